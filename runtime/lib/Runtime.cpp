//===- Runtime.cpp - Loading and running artifacts ------------------------===//
//
// moe_model_load maps the file read-only, checks the header, the manifest
// and (unless told not to) every checksum and the CPU's features, writes
// the host code section to an anonymous memfd and dlopens it; weights stay
// in the mapping and are handed to the entry in place. moe_run binds and
// checks inputs, builds the memref descriptors of the entry ABI
// (docs/artifact.md) and takes over the outputs the compiled code returns.
//
//===----------------------------------------------------------------------===//

#include "ArtifactFormat.h"
#include "RuntimeInternal.h"
#include "moe-runtime/Artifact.h"
#include "moe-runtime/Checksum.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace art = moe::artifact;
using moe::rt::setError;

namespace {
/// A moe_tensor_info and the storage it points into.
struct Info {
  moe_tensor_info info{};
  std::vector<int64_t> shape;
  std::vector<const char *> dimParams;

  void fill(const std::string &name, int dtype,
            const google::protobuf::RepeatedField<int64_t> &dims,
            const google::protobuf::RepeatedPtrField<std::string> *params) {
    shape.assign(dims.begin(), dims.end());
    dimParams.assign(shape.size(), "");
    if (params && params->size() == dims.size())
      for (int i = 0; i < params->size(); ++i)
        dimParams[i] = params->Get(i).c_str();
    info.name = name.c_str();
    info.dtype = static_cast<moe_dtype>(dtype);
    info.rank = static_cast<int32_t>(shape.size());
    info.shape = shape.data();
    info.dim_params = dimParams.data();
  }
};
} // namespace

struct moe_model {
  std::string path;
  int fd = -1;
  const unsigned char *map = nullptr;
  size_t size = 0;
  art::Manifest manifest;
  std::string entryName, features;
  std::vector<Info> inputs, outputs, weights;
  std::vector<const void *> weightData;
  /// The weights' memref descriptors, built once; args point into them.
  std::vector<std::vector<int64_t>> weightDescriptors;
  int codeFd = -1;
  std::string codePath;
  bool codePathIsTemp = false;
  void *library = nullptr;
  void (*entry)(void **) = nullptr;

  ~moe_model();
};

moe_model::~moe_model() {
  if (library) {
    dlclose(library);
    // If the library stayed loaded (it cannot always be unloaded), its
    // /proc/self/fd/N name stays taken: keep that descriptor open so no
    // later model gets the same number, and with it this library.
    if (void *still = dlopen(codePath.c_str(), RTLD_NOW | RTLD_NOLOAD)) {
      dlclose(still);
      codeFd = -1;
    }
  }
  if (codeFd >= 0)
    close(codeFd);
  if (map)
    munmap(const_cast<unsigned char *>(map), size);
  if (fd >= 0)
    close(fd);
}

namespace moe::rt {
namespace {
thread_local std::string tlsError;

std::string q(const std::string &s) { return "'" + s + "'"; }

/// "[tokens, 8]" for a declared shape, "[4, 8]" for a given one.
std::string shapeString(const int64_t *dims, int rank,
                        const char *const *params = nullptr) {
  std::string s = "[";
  for (int i = 0; i < rank; ++i) {
    if (i)
      s += ", ";
    if (dims[i] >= 0)
      s += std::to_string(dims[i]);
    else if (params && params[i] && *params[i])
      s += params[i];
    else
      s += "?";
  }
  return s + "]";
}

bool writeAll(int fd, const unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    p += w;
    n -= size_t(w);
  }
  return true;
}

/// Puts the host code where dlopen can read it: an anonymous memfd named
/// through /proc/self/fd, else a temporary file unlinked after dlopen.
std::string stageHostCode(moe_model &m, const unsigned char *code,
                          size_t size) {
  int fd = memfd_create("moe-host-code", MFD_CLOEXEC);
  if (fd >= 0) {
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    if (writeAll(fd, code, size) && access(path.c_str(), R_OK) == 0) {
      m.codeFd = fd;
      m.codePath = path;
      return "";
    }
    close(fd);
  }
  const char *dir = std::getenv("TMPDIR");
  std::string path = std::string(dir && *dir ? dir : "/tmp") +
                     "/moe-host-code-XXXXXX";
  std::vector<char> name(path.begin(), path.end());
  name.push_back('\0');
  fd = mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0)
    return "cannot create a file for the host code: " +
           std::string(std::strerror(errno));
  bool ok = writeAll(fd, code, size);
  int savedErrno = errno;
  close(fd);
  if (!ok) {
    unlink(name.data());
    return "cannot write the host code to '" + std::string(name.data()) +
           "': " + std::strerror(savedErrno);
  }
  m.codePath = name.data();
  m.codePathIsTemp = true;
  return "";
}

std::string load(moe_model &m, const char *path,
                 const moe_load_options &opts) {
  m.path = path;
  std::string p = q(m.path);
  m.fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (m.fd < 0 || fstat(m.fd, &st) != 0)
    return "cannot open " + p + ": " + std::strerror(errno);
  if (!S_ISREG(st.st_mode))
    return p + " is not a regular file";
  m.size = size_t(st.st_size);

  unsigned char head[kHeaderSize] = {};
  ssize_t got = pread(m.fd, head, kHeaderSize, 0);
  if (got < 0)
    return "cannot read " + p + ": " + std::strerror(errno);
  if (got < 8 || std::memcmp(head, kArtifactMagic, 8) != 0)
    return p + " is not a moe-mlir artifact (bad magic: its first bytes "
               "are not \"MOEMLIR\\0\")";
  if (m.size < kHeaderSize)
    return p + " is truncated: " + std::to_string(m.size) +
           " bytes, less than the " + std::to_string(kHeaderSize) +
           "-byte header";
  ArtifactHeader header = decodeHeader(head);
  if (header.formatVersion > kArtifactVersion)
    return p + " has artifact format version " +
           std::to_string(header.formatVersion) +
           ", newer than this runtime reads (" +
           std::to_string(kArtifactVersion) +
           "): run it with a newer moe-run / runtime";
  if (header.formatVersion == 0)
    return p + " has artifact format version 0, which does not exist";
  if (header.headerSize < kHeaderSize)
    return p + " has a damaged header (header size " +
           std::to_string(header.headerSize) + ")";
  if (header.fileSize > m.size)
    return p + " is truncated: its header says " +
           std::to_string(header.fileSize) + " bytes, the file has " +
           std::to_string(m.size);
  if (header.fileSize < m.size)
    return p + " has " + std::to_string(m.size) + " bytes, its header says " +
           std::to_string(header.fileSize) +
           " (trailing data or a damaged header)";
  uint64_t manifestEnd;
  if (header.manifestOffset < header.headerSize ||
      __builtin_add_overflow(header.manifestOffset, header.manifestSize,
                             &manifestEnd) ||
      manifestEnd > m.size)
    return p + ": the manifest (offset " +
           std::to_string(header.manifestOffset) + ", size " +
           std::to_string(header.manifestSize) + ") lies outside the file (" +
           std::to_string(m.size) + " bytes)";

  void *map = mmap(nullptr, m.size, PROT_READ, MAP_PRIVATE, m.fd, 0);
  if (map == MAP_FAILED)
    return "cannot map " + p + ": " + std::strerror(errno);
  m.map = static_cast<const unsigned char *>(map);

  const unsigned char *manifestBytes = m.map + header.manifestOffset;
  if (hash64(manifestBytes, header.manifestSize) != header.manifestChecksum)
    return p + ": checksum mismatch in the manifest (the file is damaged)";
  if (header.manifestSize > size_t(INT32_MAX) ||
      !m.manifest.ParseFromArray(manifestBytes, int(header.manifestSize)))
    return p + ": the manifest does not parse (the file is damaged)";
  if (std::string e = validateManifest(m.manifest, m.size,
                                       header.manifestOffset,
                                       header.manifestSize);
      !e.empty())
    return p + ": " + e;

  if (!opts.skip_checksums) {
    for (int s = 0; s < m.manifest.sections_size(); ++s) {
      const art::Section &section = m.manifest.sections(s);
      if (hash64(m.map + section.offset(), section.size()) ==
          section.checksum())
        continue;
      if (section.kind() == art::WEIGHTS)
        for (const art::Weight &w : m.manifest.weights())
          if (w.section() == uint32_t(s) &&
              hash64(m.map + section.offset() + w.offset(), w.size()) !=
                  w.checksum())
            return p + ": checksum mismatch in weight " + q(w.name()) +
                   " (section " + q(section.name()) +
                   "): the file is damaged";
      return p + ": checksum mismatch in section " + q(section.name()) +
             ": the file is damaged";
    }
  }

  const art::Target &target = m.manifest.target();
  for (const std::string &f : target.features())
    m.features += (m.features.empty() ? "" : ",") + f;
  if (!opts.skip_cpu_check)
    if (std::string e = checkCpuFeatures(target); !e.empty())
      return p + ": " + e;

  const art::Section &code =
      m.manifest.sections(findHostCodeSection(m.manifest));
  if (std::string e = stageHostCode(m, m.map + code.offset(), code.size());
      !e.empty())
    return p + ": " + e;
  dlerror();
  m.library = dlopen(m.codePath.c_str(), RTLD_NOW | RTLD_LOCAL);
  std::string dlError = m.library ? "" : dlerror();
  if (m.codePathIsTemp)
    unlink(m.codePath.c_str());
  if (!m.library)
    return p + ": the host code section does not load: " + dlError;
  m.entryName = m.manifest.entry().empty() ? kDefaultEntry
                                           : m.manifest.entry();
  m.entry = reinterpret_cast<void (*)(void **)>(
      dlsym(m.library, m.entryName.c_str()));
  if (!m.entry)
    return p + ": the host code does not export the entry " + q(m.entryName);

  for (const art::TensorSpec &t : m.manifest.inputs())
    m.inputs.emplace_back().fill(t.name(), t.dtype(), t.shape(),
                                 &t.dim_params());
  for (const art::TensorSpec &t : m.manifest.outputs())
    m.outputs.emplace_back().fill(t.name(), t.dtype(), t.shape(),
                                  &t.dim_params());
  for (const art::Weight &w : m.manifest.weights()) {
    m.weights.emplace_back().fill(w.name(), w.dtype(), w.shape(), nullptr);
    const unsigned char *data =
        m.map + m.manifest.sections(w.section()).offset() + w.offset();
    m.weightData.push_back(data);
    std::vector<int64_t> &desc = m.weightDescriptors.emplace_back();
    int64_t pointer;
    std::memcpy(&pointer, &data, sizeof pointer);
    desc = {pointer, pointer, 0};
    desc.insert(desc.end(), w.shape().begin(), w.shape().end());
    std::vector<int64_t> strides(size_t(w.shape_size()), 1);
    for (int d = w.shape_size() - 2; d >= 0; --d)
      strides[d] = strides[d + 1] * w.shape(d + 1);
    desc.insert(desc.end(), strides.begin(), strides.end());
  }
  return "";
}
} // namespace

int setError(const std::string &message) {
  tlsError = message;
  return -1;
}

const art::Manifest &modelManifest(const moe_model *model) {
  return model->manifest;
}
} // namespace moe::rt

namespace moe::rt {
namespace {
/// Binds the given inputs to the declared ones (by name) and checks them.
/// Returns "" and fills `bound`, or a message naming the input.
std::string bindInputs(const moe_model &m, const moe_tensor *given,
                       size_t count, std::vector<const moe_tensor *> &bound,
                       std::vector<std::pair<std::string, std::string>> &dims) {
  bound.assign(m.inputs.size(), nullptr);
  for (size_t i = 0; i < count; ++i) {
    const moe_tensor &t = given[i];
    if (!t.name)
      return "input #" + std::to_string(i) + " has no name";
    size_t k = 0;
    while (k < m.inputs.size() && std::strcmp(m.inputs[k].info.name, t.name))
      ++k;
    if (k == m.inputs.size()) {
      std::string names;
      for (const Info &in : m.inputs)
        names += (names.empty() ? "" : ", ") + std::string(in.info.name);
      return "unknown input " + q(t.name) + " (the model's inputs: " +
             (names.empty() ? "none" : names) + ")";
    }
    if (bound[k])
      return "input " + q(t.name) + " is given twice";
    bound[k] = &t;
  }
  // dim_param -> "value" and where it came from, in `dims` (few entries).
  for (size_t k = 0; k < m.inputs.size(); ++k) {
    const moe_tensor_info &want = m.inputs[k].info;
    std::string name = q(want.name);
    const moe_tensor *t = bound[k];
    if (!t)
      return "missing input " + name + " (" + moe_dtype_name(want.dtype) +
             " " + shapeString(want.shape, want.rank, want.dim_params) + ")";
    if (t->dtype != want.dtype)
      return "input " + name + ": dtype " + moe_dtype_name(t->dtype) +
             ", expected " + moe_dtype_name(want.dtype);
    std::string expected = shapeString(want.shape, want.rank, want.dim_params);
    if (t->rank != want.rank)
      return "input " + name + ": rank " + std::to_string(t->rank) +
             ", expected " + std::to_string(want.rank) + " (shape " +
             expected + ")";
    uint64_t bytes = moe_dtype_size(want.dtype);
    for (int d = 0; d < want.rank; ++d) {
      int64_t got = t->shape[d];
      std::string at = "input " + name + ": dim " + std::to_string(d);
      if (got < 0)
        return at + " is " + std::to_string(got);
      if (want.shape[d] >= 0 && got != want.shape[d])
        return at + " is " + std::to_string(got) + ", expected " +
               std::to_string(want.shape[d]) + " (shape " + expected +
               ", given " + shapeString(t->shape, t->rank) + ")";
      if (mulOverflows(bytes, uint64_t(got), bytes))
        return "input " + name + " is too large";
      const char *param = want.dim_params[d];
      if (!*param)
        continue;
      std::string value = std::to_string(got);
      std::string source = "input " + name + " dim " + std::to_string(d);
      bool seen = false;
      for (auto &[key, known] : dims)
        if (key == param) {
          seen = true;
          size_t space = known.find(' ');
          if (known.substr(0, space) != value)
            return "input " + name + ": dim " + std::to_string(d) + " (" +
                   param + ") is " + value + ", but " +
                   known.substr(space + 1) + " makes " + param + " " +
                   known.substr(0, space);
        }
      if (!seen)
        dims.push_back({param, value + " " + source});
    }
    if (bytes && !t->data)
      return "input " + name + " has no data";
  }
  return "";
}

/// Words of a rank-`rank` memref descriptor.
size_t descriptorWords(int rank) { return 3 + 2 * size_t(rank); }

void putPointer(int64_t *word, const void *p) {
  std::memcpy(word, &p, sizeof(void *));
}

// Where moe_rt_fail returns to: the innermost moe_run on this thread.
thread_local std::jmp_buf *failJump = nullptr;
thread_local std::string failMessage;

void *getPointer(const int64_t *word) {
  void *p;
  std::memcpy(&p, word, sizeof(void *));
  return p;
}

/// Copies a strided view (in elements of `size` bytes) to `dst`, row-major.
void copyStrided(unsigned char *&dst, const unsigned char *src,
                 const int64_t *sizes, const int64_t *strides, int rank,
                 size_t size) {
  if (rank == 0) {
    std::memcpy(dst, src, size);
    dst += size;
    return;
  }
  if (rank == 1 && strides[0] == 1) {
    std::memcpy(dst, src, size_t(sizes[0]) * size);
    dst += size_t(sizes[0]) * size;
    return;
  }
  for (int64_t i = 0; i < sizes[0]; ++i)
    copyStrided(dst, src + i * strides[0] * int64_t(size), sizes + 1,
                strides + 1, rank - 1, size);
}

struct Returned { // one output as the compiled code returned it
  void *allocated;
  unsigned char *aligned;
  int64_t offset;
  const int64_t *sizes, *strides;
  size_t bytes;
  bool adopt = false;
};

/// Whether the runtime may free() a returned buffer: not a constant the
/// code returned directly (MLIR marks those 0xdeadbeef), not the mapped
/// file, not an input.
bool freeable(const moe_model &m, void *allocated,
              const std::vector<const moe_tensor *> &inputs) {
  auto *p = static_cast<unsigned char *>(allocated);
  if (!p || allocated == reinterpret_cast<void *>(0xdeadbeef))
    return false;
  if (p >= m.map && p < m.map + m.size)
    return false;
  for (const moe_tensor *t : inputs)
    if (p == t->data)
      return false;
  return true;
}

int run(moe_model *m, const moe_tensor *inputs, size_t nInputs,
        moe_tensor *outputs, size_t nOutputs, const moe_run_options *opts) {
  if (!m)
    return setError("moe_run: no model");
  if (nInputs && !inputs)
    return setError("moe_run: inputs is NULL");
  if (nOutputs != m->outputs.size() || (nOutputs && !outputs))
    return setError("moe_run: the model has " +
                    std::to_string(m->outputs.size()) +
                    " outputs; pass an array of that many (n_outputs is " +
                    std::to_string(nOutputs) + ")");
  moe_run_options options = opts ? *opts : moe_run_options{};
  if (options.profile && profileModel(options.profile) != m)
    return setError("moe_run: the profile was created for another model");
  if (options.threads < 0)
    return setError("moe_run: threads must be >= 0 (0: all cores)");

  std::vector<const moe_tensor *> bound;
  std::vector<std::pair<std::string, std::string>> dims;
  if (std::string e = bindInputs(*m, inputs, nInputs, bound, dims);
      !e.empty())
    return setError(e);

  // Descriptors: results area first, then one per input.
  size_t words = 0;
  for (const Info &out : m->outputs)
    words += descriptorWords(out.info.rank);
  size_t resultWords = words;
  for (const Info &in : m->inputs)
    words += descriptorWords(in.info.rank);
  std::vector<int64_t> descriptors(words, 0);
  std::vector<void *> args;
  args.reserve(1 + m->inputs.size() + m->weights.size());
  args.push_back(descriptors.data());
  int64_t *at = descriptors.data() + resultWords;
  for (const moe_tensor *t : bound) {
    args.push_back(at);
    putPointer(at, t->data);
    putPointer(at + 1, t->data);
    at[2] = 0;
    int64_t stride = 1;
    for (int d = t->rank - 1; d >= 0; --d) {
      at[3 + d] = t->shape[d];
      at[3 + t->rank + d] = stride;
      stride *= t->shape[d];
    }
    at += descriptorWords(t->rank);
  }
  for (std::vector<int64_t> &desc : m->weightDescriptors)
    args.push_back(desc.data());

  RunContext context;
  context.threads = options.threads > 0 && options.threads < maxThreads()
                        ? options.threads
                        : maxThreads();
  context.profile = options.profile;
  const RunContext *saved = setCurrentRun(&context);
  // A check inside the compiled code that fails (moe_rt_fail) jumps back
  // here: the run fails with its message instead of ending the process.
  // What the code had allocated by then is lost.
  std::jmp_buf jump;
  std::jmp_buf *savedJump = failJump;
  failJump = &jump;
  if (setjmp(jump) != 0) {
    failJump = savedJump;
    setCurrentRun(saved);
    return setError("the model failed while running: " + failMessage);
  }
  m->entry(args.data());
  failJump = savedJump;
  setCurrentRun(saved);

  // Take over the outputs: check each shape, then adopt or copy.
  std::vector<Returned> returned;
  std::string error;
  at = descriptors.data();
  for (const Info &out : m->outputs) {
    const moe_tensor_info &want = out.info;
    returned.push_back({getPointer(at),
                        static_cast<unsigned char *>(getPointer(at + 1)), at[2],
                        at + 3, at + 3 + want.rank,
                        moe_dtype_size(want.dtype)});
    Returned &r = returned.back();
    at += descriptorWords(want.rank);
    bool contiguous = r.offset == 0 && r.aligned == r.allocated;
    int64_t stride = 1;
    for (int d = want.rank - 1; d >= 0 && error.empty(); --d) {
      int64_t size = r.sizes[d];
      std::string param = want.dim_params[d];
      bool bad = size < 0 || (want.shape[d] >= 0 && size != want.shape[d]);
      for (auto &[key, value] : dims)
        if (!param.empty() && key == param &&
            value.substr(0, value.find(' ')) != std::to_string(size))
          bad = true;
      if (bad || mulOverflows(r.bytes, uint64_t(size), r.bytes))
        error = "the compiled code returned output " + q(want.name) +
                " with shape " + shapeString(r.sizes, want.rank) +
                ", expected " +
                shapeString(want.shape, want.rank, want.dim_params) +
                " (a compiler bug)";
      if (!param.empty() && !bad)
        dims.push_back({param, std::to_string(size) + " output"});
      if (size > 1 && r.strides[d] != stride)
        contiguous = false;
      stride *= size;
    }
    if (!error.empty())
      continue;
    if (r.bytes && !r.aligned)
      error = "the compiled code returned output " + q(want.name) +
              " without data (a compiler bug)";
    r.adopt = contiguous && freeable(*m, r.allocated, bound);
  }
  // A buffer returned twice is adopted by neither.
  for (size_t i = 0; i < returned.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (returned[i].allocated == returned[j].allocated)
        returned[i].adopt = returned[j].adopt = false;

  std::vector<void *> data(returned.size(), nullptr);
  for (size_t i = 0; i < returned.size() && error.empty(); ++i) {
    Returned &r = returned[i];
    if (r.adopt && r.bytes) {
      data[i] = r.allocated;
      continue;
    }
    r.adopt = false;
    data[i] = std::malloc(r.bytes ? r.bytes : 1);
    if (!data[i]) {
      error = "out of memory for output " + q(m->outputs[i].info.name);
      break;
    }
    if (r.bytes) {
      auto *dst = static_cast<unsigned char *>(data[i]);
      const moe_tensor_info &want = m->outputs[i].info;
      size_t elementSize = moe_dtype_size(want.dtype);
      copyStrided(dst, r.aligned + r.offset * int64_t(elementSize), r.sizes,
                  r.strides, want.rank, elementSize);
    }
  }
  // Free what was not adopted, each buffer once.
  for (size_t i = 0; i < returned.size(); ++i) {
    bool first = true;
    for (size_t j = 0; j < i; ++j)
      first = first && returned[j].allocated != returned[i].allocated;
    if (first && (!returned[i].adopt || !error.empty()) &&
        freeable(*m, returned[i].allocated, bound))
      std::free(returned[i].allocated);
  }
  if (!error.empty()) {
    for (size_t i = 0; i < returned.size(); ++i)
      if (!returned[i].adopt)
        std::free(data[i]);
    return setError(error);
  }

  for (size_t i = 0; i < returned.size(); ++i) {
    const moe_tensor_info &want = m->outputs[i].info;
    moe_tensor &t = outputs[i];
    t.name = want.name;
    t.dtype = want.dtype;
    t.rank = want.rank;
    for (int d = 0; d < MOE_MAX_RANK; ++d)
      t.shape[d] = d < want.rank ? returned[i].sizes[d] : 0;
    t.data = data[i];
  }
  if (options.profile)
    profileCountRun(options.profile);
  return 0;
}
} // namespace
} // namespace moe::rt

extern "C" {

const char *moe_last_error(void) { return moe::rt::tlsError.c_str(); }

moe_model *moe_model_load(const char *path, const moe_load_options *opts) {
  if (!path) {
    setError("moe_model_load: no path");
    return nullptr;
  }
  try {
    auto *model = new moe_model;
    std::string error =
        moe::rt::load(*model, path, opts ? *opts : moe_load_options{});
    if (error.empty())
      return model;
    delete model;
    setError(error);
  } catch (const std::bad_alloc &) {
    setError(std::string("out of memory loading '") + path + "'");
  }
  return nullptr;
}

void moe_model_free(moe_model *model) { delete model; }

size_t moe_model_num_inputs(const moe_model *m) {
  return m ? m->inputs.size() : 0;
}
size_t moe_model_num_outputs(const moe_model *m) {
  return m ? m->outputs.size() : 0;
}
size_t moe_model_num_weights(const moe_model *m) {
  return m ? m->weights.size() : 0;
}
const moe_tensor_info *moe_model_input(const moe_model *m, size_t i) {
  return m && i < m->inputs.size() ? &m->inputs[i].info : nullptr;
}
const moe_tensor_info *moe_model_output(const moe_model *m, size_t i) {
  return m && i < m->outputs.size() ? &m->outputs[i].info : nullptr;
}
const moe_tensor_info *moe_model_weight(const moe_model *m, size_t i) {
  return m && i < m->weights.size() ? &m->weights[i].info : nullptr;
}
const void *moe_model_weight_data(const moe_model *m, size_t i) {
  return m && i < m->weightData.size() ? m->weightData[i] : nullptr;
}
const char *moe_model_producer(const moe_model *m) {
  return m ? m->manifest.producer().c_str() : "";
}
const char *moe_model_entry(const moe_model *m) {
  return m ? m->entryName.c_str() : "";
}
const char *moe_model_isa_level(const moe_model *m) {
  return m ? m->manifest.target().isa_level().c_str() : "";
}
const char *moe_model_cpu_features(const moe_model *m) {
  return m ? m->features.c_str() : "";
}

extern "C" void moe_rt_fail(const char *message) {
  using moe::rt::failJump;
  using moe::rt::failMessage;
  if (!failJump) {
    // Not on a thread running moe_run (a pool worker): nothing to return
    // to safely.
    std::fprintf(stderr, "moe runtime: fatal: %s\n", message);
    std::abort();
  }
  failMessage = message;
  std::longjmp(*failJump, 1);
}

int moe_run(moe_model *model, const moe_tensor *inputs, size_t n_inputs,
            moe_tensor *outputs, size_t n_outputs,
            const moe_run_options *opts) {
  try {
    return moe::rt::run(model, inputs, n_inputs, outputs, n_outputs, opts);
  } catch (const std::bad_alloc &) {
    return setError("moe_run: out of memory");
  }
}

void moe_tensor_free(moe_tensor *tensor) {
  if (!tensor)
    return;
  std::free(tensor->data);
  tensor->data = nullptr;
}

const char *moe_dtype_name(moe_dtype dtype) {
  switch (dtype) {
  case MOE_DT_F32: return "f32";
  case MOE_DT_F16: return "f16";
  case MOE_DT_BF16: return "bf16";
  case MOE_DT_F64: return "f64";
  case MOE_DT_I64: return "i64";
  case MOE_DT_I32: return "i32";
  case MOE_DT_I8: return "i8";
  case MOE_DT_U8: return "u8";
  case MOE_DT_BOOL: return "bool";
  default: return "unknown";
  }
}

size_t moe_dtype_size(moe_dtype dtype) {
  switch (dtype) {
  case MOE_DT_F64: case MOE_DT_I64: return 8;
  case MOE_DT_F32: case MOE_DT_I32: return 4;
  case MOE_DT_F16: case MOE_DT_BF16: return 2;
  case MOE_DT_I8: case MOE_DT_U8: case MOE_DT_BOOL: return 1;
  default: return 0;
  }
}

} // extern "C"

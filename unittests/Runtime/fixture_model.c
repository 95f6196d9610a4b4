/* A stand-in for compiled code, built at test time with `cc -shared -fPIC`
 * and wrapped into an artifact by Fixture.cpp. It implements the entry ABI
 * of docs/artifact.md for:
 *   inputs   x      f32 [tokens, 8]
 *            offset i64 [tokens]
 *   weights  w      f32 [8]           (w[h] = 0.5 * (h + 1))
 *            c      u8  [4]           (c = {2, 3, 4, 5}, another section)
 *   outputs  y      f32 [tokens, 8]   y[t][h] = x[t][h] * w[h] + BIAS + offset[t]
 *            yt     f32 [8, tokens]   yt[h][t] = y[t][h] * c[0], returned as
 *                                     a strided view with an offset
 *            count  i64 []            tokens
 * It records routing for layer 0 (4 experts, top 2: token t picks t % 4
 * and (3t + 1) % 4), layer 1 (3 experts, top 1: t % 3) and layer 7 (not
 * in the manifest), and computes y in moe_rt_parallel_for ranges, with a
 * nested parallel_for per token. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef ENTRY
#define ENTRY moe_entry
#endif
#ifndef BIAS
#define BIAS 1.0f
#endif

void moe_rt_record_routing(int64_t layer, const int64_t *selected,
                           int64_t tokens, int64_t k);
void moe_rt_parallel_for(int64_t n,
                         void (*body)(int64_t, int64_t, void *), void *ctx);
#ifdef UNDEFINED_SYMBOL
void moe_rt_does_not_exist(void);
#endif

typedef struct { void *allocated, *aligned; int64_t offset, sizes[2], strides[2]; } md2;
typedef struct { void *allocated, *aligned; int64_t offset, sizes[1], strides[1]; } md1;
typedef struct { void *allocated, *aligned; int64_t offset; } md0;
typedef struct { md2 y; md2 yt; md0 count; } results;

typedef struct {
  const float *x, *w;
  const int64_t *offset;
  float *y, *yt;
  int64_t tokens;
  float c0;
} work;

typedef struct { const work *w; int64_t t; } row;

static void columns(int64_t begin, int64_t end, void *ctx) {
  const row *r = (const row *)ctx;
  const work *k = r->w;
  for (int64_t h = begin; h < end; ++h) {
    float v = k->x[r->t * 8 + h] * k->w[h] + BIAS + (float)k->offset[r->t];
    k->y[r->t * 8 + h] = v;
    k->yt[r->t * 8 + h] = v * k->c0;
  }
}

static void rows(int64_t begin, int64_t end, void *ctx) {
  const work *k = (const work *)ctx;
  int64_t n = end - begin;
  int64_t *selected = (int64_t *)malloc(sizeof(int64_t) * 2 * (n ? n : 1));
  for (int64_t t = begin; t < end; ++t) {
    row r = {k, t};
    moe_rt_parallel_for(8, columns, &r); /* nested: runs inline */
    selected[2 * (t - begin)] = t % 4;
    selected[2 * (t - begin) + 1] = (3 * t + 1) % 4;
  }
  moe_rt_record_routing(0, selected, n, 2);
  free(selected);
}

void ENTRY(void **args) {
#ifdef UNDEFINED_SYMBOL
  moe_rt_does_not_exist();
#endif
  results *out = (results *)args[0];
  const md2 *x = (const md2 *)args[1];
  const md1 *offset = (const md1 *)args[2];
  const md1 *w = (const md1 *)args[3];
  const md1 *c = (const md1 *)args[4];
  int64_t tokens = x->sizes[0];

  work k;
  k.x = (const float *)x->aligned + x->offset;
  k.offset = (const int64_t *)offset->aligned + offset->offset;
  k.w = (const float *)w->aligned + w->offset;
  k.c0 = (float)((const uint8_t *)c->aligned)[c->offset];
  k.tokens = tokens;
  k.y = (float *)malloc(sizeof(float) * (size_t)(tokens * 8 + 1));
  /* yt: a [tokens, 8] buffer read as [8, tokens], 3 floats into a block
   * that starts 16 bytes before `aligned`. */
  float *block = (float *)malloc(sizeof(float) * (size_t)(tokens * 8 + 8));
  k.yt = block + 7;
  moe_rt_parallel_for(tokens, rows, &k);

  int64_t *sel1 = (int64_t *)malloc(sizeof(int64_t) * (size_t)(tokens + 1));
  for (int64_t t = 0; t < tokens; ++t)
    sel1[t] = t % 3;
  moe_rt_record_routing(1, sel1, tokens, 1);
  free(sel1);
  int64_t unknown = 0;
  moe_rt_record_routing(7, &unknown, 1, 1);

  out->y.allocated = out->y.aligned = k.y;
  out->y.offset = 0;
  out->y.sizes[0] = tokens;
  out->y.sizes[1] = 8;
  out->y.strides[0] = 8;
  out->y.strides[1] = 1;
#ifdef BAD_OUTPUT_SHAPE
  out->y.sizes[1] = 7;
#endif
  out->yt.allocated = block;
  out->yt.aligned = block + 4;
  out->yt.offset = 3;
  out->yt.sizes[0] = 8;
  out->yt.sizes[1] = tokens;
  out->yt.strides[0] = 1;
  out->yt.strides[1] = 8;
  int64_t *count = (int64_t *)malloc(sizeof(int64_t));
  *count = tokens;
  out->count.allocated = out->count.aligned = count;
  out->count.offset = 0;
}

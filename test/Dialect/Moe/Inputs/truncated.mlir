func.func @f(%x: tensor<?x4xf32>) {
  %y = moe.layer %x, 

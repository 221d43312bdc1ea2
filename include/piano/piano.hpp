// piano/piano.hpp: the whole library in one include. Prefer the fine-grained headers in
// library code; this one is for programs and quick experiments. The checkpoint header
// (which needs cereal) is included only when cereal is available.
#pragma once

#include "piano/core/error.hpp"
#include "piano/core/gradcheck.hpp"
#include "piano/core/tensor.hpp"

#include "piano/ops/dropout.hpp"
#include "piano/ops/elementwise.hpp"
#include "piano/ops/indexing.hpp"
#include "piano/ops/layer_norm.hpp"
#include "piano/ops/loss.hpp"
#include "piano/ops/matmul.hpp"
#include "piano/ops/reduce.hpp"
#include "piano/ops/segment.hpp"
#include "piano/ops/softmax.hpp"
#include "piano/ops/unary.hpp"

#include "piano/nn/init.hpp"
#include "piano/nn/linear.hpp"
#include "piano/nn/module.hpp"

#include "piano/optim/optimizer.hpp"

#include "piano/metrics/auc.hpp"
#include "piano/metrics/evaluate.hpp"
#include "piano/metrics/ranking.hpp"
#include "piano/metrics/report.hpp"

#include "piano/model/config.hpp"

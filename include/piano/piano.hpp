// piano/piano.hpp: the whole library in one include. Prefer the fine-grained headers in
// library code; this one is for programs and quick experiments.
//
// Checkpoints (piano/io/checkpoint.hpp) and the trainer that saves them
// (piano/train/trainer.hpp) need cereal; they are included when cereal's headers are
// found, so a program without cereal still gets everything else.
#pragma once

// core: tensors, the autograd graph, errors, gradient checks, parallel loops
#include "piano/core/error.hpp"
#include "piano/core/gradcheck.hpp"
#include "piano/core/parallel.hpp"
#include "piano/core/tensor.hpp"

// ops: differentiable functions of tensors
#include "piano/ops/attention.hpp"
#include "piano/ops/dropout.hpp"
#include "piano/ops/elementwise.hpp"
#include "piano/ops/indexing.hpp"
#include "piano/ops/layer_norm.hpp"
#include "piano/ops/linear.hpp"
#include "piano/ops/loss.hpp"
#include "piano/ops/matmul.hpp"
#include "piano/ops/reduce.hpp"
#include "piano/ops/segment.hpp"
#include "piano/ops/softmax.hpp"
#include "piano/ops/unary.hpp"

// nn: modules with parameters
#include "piano/nn/attention.hpp"
#include "piano/nn/dropout.hpp"
#include "piano/nn/embedding.hpp"
#include "piano/nn/init.hpp"
#include "piano/nn/layer_norm.hpp"
#include "piano/nn/linear.hpp"
#include "piano/nn/mlp.hpp"
#include "piano/nn/module.hpp"
#include "piano/nn/transformer.hpp"

// optim: optimizers, clipping, learning-rate schedules
#include "piano/optim/adam.hpp"
#include "piano/optim/clip.hpp"
#include "piano/optim/optimizer.hpp"
#include "piano/optim/schedule.hpp"
#include "piano/optim/sgd.hpp"

// data: requests, batches, the JDsearch loader, the simulator
#include "piano/data/batch.hpp"
#include "piano/data/click_model.hpp"
#include "piano/data/jdsearch.hpp"
#include "piano/data/request.hpp"
#include "piano/data/shuffle.hpp"
#include "piano/data/simulator.hpp"
#include "piano/data/vocabulary.hpp"

// model: PIANO, the baselines, losses, configuration
#include "piano/model/baselines.hpp"
#include "piano/model/config.hpp"
#include "piano/model/encoders.hpp"
#include "piano/model/explain.hpp"
#include "piano/model/factory.hpp"
#include "piano/model/losses.hpp"
#include "piano/model/piano_model.hpp"
#include "piano/model/reranker.hpp"

// metrics: AUC, GAUC, NDCG, MAP and the report table
#include "piano/metrics/auc.hpp"
#include "piano/metrics/check.hpp"
#include "piano/metrics/evaluate.hpp"
#include "piano/metrics/online.hpp"
#include "piano/metrics/ranking.hpp"
#include "piano/metrics/report.hpp"

// train: the training loop (below, with cereal) and its progress display
#include "piano/train/progress.hpp"

#if __has_include(<cereal/cereal.hpp>)
#include "piano/io/checkpoint.hpp"
#include "piano/train/trainer.hpp"
#endif

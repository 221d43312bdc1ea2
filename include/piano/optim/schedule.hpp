// piano/optim/schedule.hpp: learning-rate schedules.
//
// A schedule is a small value object with `double lr(long step) const`, where `step` counts
// updates from 0: the rate for the update about to be made. The usual loop is
//     optimizer.set_learning_rate(schedule.lr(optimizer.steps_taken()));
//     optimizer.step();
// so a run resumed from a checkpoint (which restores steps_taken) continues the schedule.
//
// With W warm-up steps the rate climbs linearly, lr(s) = peak (s + 1) / W for s < W: the
// first update already moves (a rate of 0 would waste it) and step W - 1 reaches the peak.
// From step W to step S (total_steps) it decays to `floor`, and stays there after S.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>

#include "piano/core/error.hpp"

namespace piano {

namespace detail {

inline void check_schedule_step(const char* schedule, long step) {
    if (step < 0) throw std::invalid_argument(std::string(schedule) + ": step " + std::to_string(step) + " is negative");
}

/// ConfigError unless 0 <= floor <= peak and 0 <= warmup < total.
inline void check_warmup_decay(const char* schedule, double peak, long warmup, long total, double floor) {
    const std::string name(schedule);
    detail::require_at_least(name, "peak_lr", peak);
    if (!(floor >= 0 && floor <= peak)) throw ConfigError(name + ": floor_lr must be in [0, peak_lr]");
    if (warmup < 0) throw ConfigError(name + ": warmup_steps must be >= 0, got " + std::to_string(warmup));
    if (total <= warmup) {
        throw ConfigError(name + ": total_steps (" + std::to_string(total) + ") must exceed warmup_steps (" +
                          std::to_string(warmup) + ")");
    }
}

/// The rate of a warm-up-then-decay schedule at `step` (checked by the caller): the linear
/// warm-up, then floor + (peak - floor) * remaining(progress) with progress in [0, 1) from
/// step W to S, then the floor. `remaining` falls from 1 at progress 0 towards 0 at 1.
template <class Remaining>
double warmup_then_decay(long step, double peak, double floor, long warmup, long total, Remaining remaining) {
    if (step < warmup) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup);
    if (step >= total) return floor;
    const double progress = static_cast<double>(step - warmup) / static_cast<double>(total - warmup);
    return floor + (peak - floor) * remaining(progress);
}

}  // namespace detail

/// lr(s) = lr for every step.
class ConstantSchedule {
public:
    explicit ConstantSchedule(double lr) : lr_(lr) {
        detail::require_at_least("ConstantSchedule", "lr", lr);
    }
    double lr(long step) const {
        detail::check_schedule_step("ConstantSchedule", step);
        return lr_;
    }

private:
    double lr_;
};

/// Linear warm-up over W steps, then a half cosine from peak down to floor at step S:
///   s < W:       peak (s + 1) / W
///   W <= s < S:  floor + (peak - floor) (1 + cos(pi (s - W) / (S - W))) / 2
///   s >= S:      floor
/// The cosine keeps the rate near the peak longer than a line would, and flattens as it
/// reaches the floor, so the last steps are small.
class WarmupCosineSchedule {
public:
    WarmupCosineSchedule(double peak_lr, long warmup_steps, long total_steps, double floor_lr = 0.0)
        : peak_(peak_lr), floor_(floor_lr), warmup_(warmup_steps), total_(total_steps) {
        detail::check_warmup_decay("WarmupCosineSchedule", peak_lr, warmup_steps, total_steps, floor_lr);
    }
    double lr(long step) const {
        detail::check_schedule_step("WarmupCosineSchedule", step);
        return detail::warmup_then_decay(step, peak_, floor_, warmup_, total_,
                                         [](double progress) { return 0.5 * (1.0 + std::cos(pi * progress)); });
    }

private:
    static constexpr double pi = 3.14159265358979323846;  // M_PI is POSIX, not standard C++
    double peak_, floor_;
    long warmup_, total_;
};

/// Linear warm-up over W steps, then a straight line from peak down to floor at step S:
///   s < W:       peak (s + 1) / W
///   W <= s < S:  floor + (peak - floor) (1 - (s - W) / (S - W))
///   s >= S:      floor
class WarmupLinearSchedule {
public:
    WarmupLinearSchedule(double peak_lr, long warmup_steps, long total_steps, double floor_lr = 0.0)
        : peak_(peak_lr), floor_(floor_lr), warmup_(warmup_steps), total_(total_steps) {
        detail::check_warmup_decay("WarmupLinearSchedule", peak_lr, warmup_steps, total_steps, floor_lr);
    }
    double lr(long step) const {
        detail::check_schedule_step("WarmupLinearSchedule", step);
        return detail::warmup_then_decay(step, peak_, floor_, warmup_, total_,
                                         [](double progress) { return 1.0 - progress; });
    }

private:
    double peak_, floor_;
    long warmup_, total_;
};

}  // namespace piano

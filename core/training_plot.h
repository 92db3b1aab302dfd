// Charts of feature variance during adaptation, drawn as PNG images, to
// spot feature collapse: training that shrinks the normal class's features
// towards a point leaves nothing for the kNN scorer to separate.
//
// Both charts plot the relative feature variance, ClassResult.training's
// feature_variance divided by its value at epoch 0 (the pretrained
// network), so every line starts at 1. The axes:
//   - x spans epoch 0 to the last epoch of any line (at least 1), linearly.
//   - y is log10 of the relative variance. It spans the smallest to the
//     largest value drawn, widened by 0.1 decade on each side and then, if
//     still narrower than one decade, to one decade around its centre.
//     Values below kMinRelativeVariance, zero included, are drawn at
//     kMinRelativeVariance. Non-finite values are left out of their line.
#ifndef PANDA_CORE_TRAINING_PLOT_H_
#define PANDA_CORE_TRAINING_PLOT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "config/results.pb.h"

namespace panda {

// Pixel geometry of both training charts (see core/chart.h's ChartLayout):
// an 880x560 image whose plot area has its top-left corner at (70, 30).
inline constexpr int kTrainingChartWidth = 880;
inline constexpr int kTrainingChartHeight = 560;
inline constexpr int kTrainingChartLeft = 70;
inline constexpr int kTrainingChartTop = 30;
inline constexpr int kTrainingChartPlotWidth = 480;
inline constexpr int kTrainingChartPlotHeight = 480;

// Floor of the y axis, so that a variance that collapses to 0 stays on the
// log scale.
inline constexpr double kMinRelativeVariance = 1e-12;

// Returns whether any class of the run's first seed has training records.
bool HasTrainingRecords(const RunResult& result);

// Returns the PNG bytes of a chart with one line per normal class of the
// run's first seed. The legend gives each class's index, name and relative
// variance after its last epoch. A class whose records lack a positive
// epoch-0 variance gets a grey legend entry "(no epoch 0)" and no line.
// InvalidArgument when HasTrainingRecords(result) is false.
absl::StatusOr<std::string> RenderFeatureVarianceByClassPng(
    const RunResult& result);

// Returns the PNG bytes of a chart with one line per run, labelled with the
// run's name (the `first` of each pair, for example its pipeline name). A
// run's line is the arithmetic mean, over the normal classes of its first
// seed, of the relative variance at each epoch. At an epoch that only some
// classes reached, the mean covers those classes. Runs without training
// records, or whose classes all lack an epoch-0 variance, get a grey legend
// entry "(no training)" or "(no epoch 0)" and no line, so colours go to the
// drawn lines only. InvalidArgument when `runs` is empty or no run has a
// line to draw.
absl::StatusOr<std::string> RenderFeatureVarianceByRunPng(
    const std::vector<std::pair<std::string, RunResult>>& runs);

}  // namespace panda

#endif  // PANDA_CORE_TRAINING_PLOT_H_

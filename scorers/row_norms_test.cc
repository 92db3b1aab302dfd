#include "scorers/row_norms.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace panda {
namespace {

TEST(RowNormsTest, SquaredNormsOfRows) {
  // Rows (3, 4), (0, 0) and (1, -2): squared norms 25, 0 and 5.
  const std::vector<float> data = {3, 4, 0, 0, 1, -2};
  std::vector<float> norms(3);
  SquaredRowNorms(data.data(), 3, 2, norms.data());
  EXPECT_EQ(norms, (std::vector<float>{25, 0, 5}));
}

TEST(RowNormsTest, NonFiniteValuePropagatesToNorm) {
  const std::vector<float> data = {1, std::numeric_limits<float>::infinity()};
  float norm = 0;
  SquaredRowNorms(data.data(), 1, 2, &norm);
  EXPECT_TRUE(std::isinf(norm));
}

TEST(RowNormsTest, FirstNonFiniteRowFindsFirst) {
  std::vector<float> data(5 * 3, 1.0f);
  EXPECT_EQ(FirstNonFiniteRow(data.data(), 5, 3), -1);
  data[3 * 3 + 2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(FirstNonFiniteRow(data.data(), 5, 3), 3);
  data[1 * 3 + 0] = -std::numeric_limits<float>::infinity();
  EXPECT_EQ(FirstNonFiniteRow(data.data(), 5, 3), 1);
}

TEST(RowNormsTest, ScaleRowsToUnitNorm) {
  const std::vector<float> data = {3, 4, 0, -2};
  const std::vector<float> squared_norms = {25, 4};
  std::vector<float> out(4);
  ScaleRowsToUnitNorm(data.data(), squared_norms.data(), 2, 2, out.data());
  EXPECT_FLOAT_EQ(out[0], 0.6f);
  EXPECT_FLOAT_EQ(out[1], 0.8f);
  EXPECT_FLOAT_EQ(out[2], 0.0f);
  EXPECT_FLOAT_EQ(out[3], -1.0f);
}

}  // namespace
}  // namespace panda

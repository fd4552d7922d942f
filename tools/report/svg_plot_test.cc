#include "tools/report/svg_plot.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvgate::report {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pointwise;

Figure Example() {
  Figure fig;
  fig.title = "Speed & <ceiling>";
  Panel& p = fig.panels.emplace_back();
  p.title = "panel";
  p.x = {"f", 0, 1, false};
  p.y = {"speedup", 0.8, 1.6, false};
  p.series.push_back({"curve", {{0, 1.5}, {0.5, 1.2}, {1, 0.95}}, "#1f77b4", true, "6 3"});
  p.series.push_back({"points",
                      {{0.35, 1.2}, {NAN, 1.0}},
                      "#000000",
                      false,
                      "",
                      MarkerShape::kHollowDiamond,
                      {"study"}});
  p.hlines.push_back({1.2, "gate: >= 1.20x"});
  fig.caption = {"a caption"};
  return fig;
}

TEST(SvgPlotTest, RendersAStandaloneDocumentDeterministically) {
  const std::string svg = RenderSvg(Example());
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  EXPECT_EQ(svg, RenderSvg(Example()));
  EXPECT_THAT(svg, HasSubstr("Speed &amp; &lt;ceiling&gt;"));
  EXPECT_THAT(svg, HasSubstr("gate: &gt;= 1.20x"));
  EXPECT_THAT(svg, HasSubstr("stroke-dasharray=\"6 3\""));
  EXPECT_THAT(svg, HasSubstr(">study</text>"));
  EXPECT_THAT(svg, Not(HasSubstr("nan")));                  // the non-finite point is skipped
  EXPECT_THAT(svg, HasSubstr("<polyline points=\"72.0,"));  // x = 0 at the left margin
}

TEST(SvgPlotTest, EmptyNoteAndWrappedCaption) {
  Figure fig = Example();
  fig.panels[0].series.clear();
  fig.panels[0].empty_note = "no records yet";
  fig.caption = {std::string(300, 'x') + " " + "word " + std::string(20, 'y')};
  const std::string svg = RenderSvg(fig);
  EXPECT_THAT(svg, HasSubstr(">no records yet</text>"));
  EXPECT_THAT(svg, HasSubstr(">word yyyyyyyyyyyyyyyyyyyy</text>"));  // wrapped onto its own line
}

TEST(SvgPlotTest, GridBarsOutOfRangePointsAndLegendText) {
  Figure fig;
  fig.columns = 2;
  fig.panel_width = 400;
  fig.panel_height = 300;
  for (int i = 0; i < 3; ++i) {
    Panel& p = fig.panels.emplace_back();
    p.title = "panel " + std::to_string(i);
    p.x = {"x", 0, 1, false};
    p.y = {"y", 0.01, 10, true};
  }
  // In range with a bar; above the range (not drawn, never pinned to the frame's top).
  Series s{"s", {{0.5, 1.0}, {0.6, 100.0}}, "#123456", false, "", MarkerShape::kCircle};
  s.y_bars = {{0.5, 2.0}, {50.0, 200.0}};
  fig.panels[0].series.push_back(s);
  HLine a{0.1, "", "#555555", "2 3", "study (both lines)"};
  HLine b{0.2, "left text", "#555555", "2 3", "study (both lines)", true};
  fig.panels[1].hlines = {a, b};
  const std::string svg = RenderSvg(fig);
  // Two panels a row: 800 wide; the third panel starts a second row (its title at y 300 + 34 + 20).
  EXPECT_THAT(svg, HasSubstr("width=\"800\""));
  EXPECT_THAT(svg, HasSubstr("<text x=\"224.0\" y=\"354.0\" font-size=\"13\" "
                             "text-anchor=\"middle\" font-weight=\"bold\">panel 2</text>"));
  size_t circles = 0;
  for (size_t at = svg.find("<circle"); at != std::string::npos; at = svg.find("<circle", at + 1)) {
    ++circles;
  }
  // One point and its legend marker: the point at y = 100 is outside [0.01, 10], not drawn.
  EXPECT_EQ(circles, 2u);
  EXPECT_THAT(svg, HasSubstr("stroke=\"#123456\" stroke-width=\"1.5\"/>"));  // its bar
  // One legend entry for the two lines, and the left-anchored text on the plot.
  size_t entries = 0;
  for (size_t at = svg.find(">study (both lines)<"); at != std::string::npos;
       at = svg.find(">study (both lines)<", at + 1)) {
    ++entries;
  }
  EXPECT_EQ(entries, 1u);
  EXPECT_THAT(svg, HasSubstr("text-anchor=\"start\" fill=\"#555555\">left text</text>"));
}

TEST(SvgPlotTest, Ticks) {
  EXPECT_THAT(AxisTicks({"", 0, 1, false}),
              Pointwise(DoubleNear(1e-12), std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1}));
  EXPECT_THAT(AxisTicks({"", 0.01, 10, true}),
              Pointwise(DoubleNear(1e-12), std::vector<double>{0.01, 0.1, 1, 10}));
  EXPECT_THAT(AxisTicks({"", -0.25, 3.25, false}), ElementsAre(0, 1, 2, 3));
  EXPECT_TRUE(AxisTicks({"", 1, 1, false}).empty());
  EXPECT_THAT(AxisTicks({"", 1000, 200000, true, {512, 2048, 131072}}), ElementsAre(2048, 131072));
}

TEST(SvgPlotTest, AutoRange) {
  EXPECT_EQ(AutoRange({}, false, 0.8, 1.6), std::make_pair(0.8, 1.6));
  const auto [log_lo, log_hi] = AutoRange({0.02, 1.74, NAN, -1}, true, 1, 10);
  EXPECT_DOUBLE_EQ(log_lo, 0.01);
  EXPECT_DOUBLE_EQ(log_hi, 10.0);
  const auto [lo, hi] = AutoRange({1.0, 2.0}, false, 0, 1);
  EXPECT_DOUBLE_EQ(lo, 0.92);
  EXPECT_DOUBLE_EQ(hi, 2.08);
}

}  // namespace
}  // namespace kvgate::report

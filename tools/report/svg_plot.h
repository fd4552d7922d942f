// SVG line and scatter plots, written as text: no plotting library, byte-identical output for
// the same input (coordinates printed with one decimal, series drawn in the order given).
//
// A figure is one or more panels side by side, a shared legend under them and caption lines.
// Each panel has linear or log10 axes, series (a polyline, markers, or both, with optional
// vertical interval bars) and horizontal reference lines (e.g. a gate threshold). Panels sit in
// rows of Figure::columns. A point outside a panel's range is not drawn (never pinned to the
// frame's edge as if it were there): callers size the axes to hold every point.
//
// Usage:
//   Figure fig{.title = "Projected speedup"};
//   Panel& p = fig.panels.emplace_back();
//   p.x = {.label = "active fraction f", .min = 0, .max = 1};
//   p.y = {.label = "speedup", .min = 0.8, .max = 1.6};
//   p.series.push_back({.label = "p_attn = 0.334, h = 0", .points = {{0, 1.5}, {1, 1}}});
//   p.hlines.push_back({.y = 1.2, .label = "gate: >= 1.20x"});
//   std::string svg = RenderSvg(fig);

#ifndef KVGATE_TOOLS_REPORT_SVG_PLOT_H_
#define KVGATE_TOOLS_REPORT_SVG_PLOT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace kvgate::report {

// A colour for the i-th series of a figure (a fixed palette, repeating).
std::string PaletteColor(int i);

enum class MarkerShape { kNone, kCircle, kSquare, kDiamond, kHollowDiamond };

struct Series {
  std::string label;  // in the legend; series with equal labels share one legend entry
  std::vector<std::pair<double, double>> points;  // (x, y); non-finite points are skipped
  std::string color = "#1f77b4";
  bool line = true;  // join the points
  std::string dash;  // SVG stroke-dasharray, e.g. "6 3"; empty: solid
  MarkerShape marker = MarkerShape::kNone;
  std::vector<std::string> point_labels;  // optional text beside each point (same length)
  // Optional vertical bars, one per point (same length): (low, high), e.g. a 95% interval.
  std::vector<std::pair<double, double>> y_bars;
};

struct HLine {
  double y = 0;
  std::string label;  // drawn at the right end of the line, and in the legend
  std::string color = "#d62728";
  std::string dash = "8 4";
  std::string legend;       // the legend's text when not `label` (several lines, one entry)
  bool label_left = false;  // draw `label` at the left end instead of the right
};

struct Axis {
  std::string label;
  double min = 0, max = 1;  // the range shown; for a log axis both must be > 0
  bool log = false;         // log10 scale, ticks at powers of ten
  std::vector<double> ticks;  // when set, the ticks instead (those inside the range)
};

struct Panel {
  std::string title;
  Axis x, y;
  std::vector<Series> series;
  std::vector<HLine> hlines;
  std::string empty_note;  // drawn in the middle of the panel when set (e.g. "no records yet")
};

struct Figure {
  std::string title;
  std::vector<Panel> panels;
  std::vector<std::string> caption;  // paragraphs under the legend, wrapped to the figure's width
  int panel_width = 520;             // pixels, each panel including its axes
  int panel_height = 360;
  int columns = 0;  // panels a row; 0: all in one row
};

// The figure as a standalone SVG document (ends in a newline).
std::string RenderSvg(const Figure& figure);

// Tick values for an axis: its own ticks inside the range when set, else 4 to 10 "nice" values (1,
// 2, 5 times a power of ten) inside the range for a linear axis; powers of ten inside the range for
// a log axis.
std::vector<double> AxisTicks(const Axis& axis);

// A range that holds every value with a margin; `values` may hold non-finite entries, which are
// ignored. For a log axis only positive values count and the range is widened to whole decades.
// With no usable values, [fallback_min, fallback_max].
std::pair<double, double> AutoRange(const std::vector<double>& values, bool log,
                                    double fallback_min, double fallback_max);

// Text for an XML text node or attribute.
std::string XmlEscape(absl::string_view text);

}  // namespace kvgate::report

#endif  // KVGATE_TOOLS_REPORT_SVG_PLOT_H_

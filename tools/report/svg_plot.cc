#include "tools/report/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace kvgate::report {
namespace {

constexpr int kMarginLeft = 72, kMarginRight = 24, kMarginTop = 36, kMarginBottom = 52;
constexpr int kTitleHeight = 34;
constexpr int kLegendRowHeight = 18;
constexpr int kCaptionRowHeight = 16;
// Text widths are estimated (no font metrics): an 11-pixel sans-serif character is about this wide.
constexpr double kCharWidth = 6.4;

// `text` broken at spaces into lines of at most `width` characters (a longer word stays whole).
std::vector<std::string> Wrap(const std::string& text, size_t width) {
  std::vector<std::string> lines;
  std::string line;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(line);
      line.clear();
    }
    line += line.empty() ? word : " " + word;
    start = end + 1;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

std::string Num(double v) {
  std::string s = absl::StrFormat("%.1f", v);
  return s == "-0.0" ? "0.0" : s;
}

// "0.25", "1", "1e-05": short and deterministic tick labels.
std::string TickLabel(double v) {
  if (std::fabs(v) < 1e-12) return "0";
  return absl::StrFormat("%g", v);
}

// Maps data to pixels in one panel.
struct Frame {
  double left, top, width, height;
  Axis x, y;

  double Fraction(const Axis& a, double v) const {
    if (a.log) return (std::log10(v) - std::log10(a.min)) / (std::log10(a.max) - std::log10(a.min));
    return (v - a.min) / (a.max - a.min);
  }
  double Clamp01(double f) const { return std::min(1.0, std::max(0.0, f)); }
  bool Inside(const Axis& a, double v) const {
    const double t = Fraction(a, v);
    return t >= -1e-9 && t <= 1 + 1e-9;
  }
  bool Usable(const Axis& a, double v) const { return std::isfinite(v) && (!a.log || v > 0); }
  double Px(double v) const { return left + Clamp01(Fraction(x, v)) * width; }
  double Py(double v) const { return top + height - Clamp01(Fraction(y, v)) * height; }
};

std::string MarkerSvg(MarkerShape shape, double cx, double cy, const std::string& color) {
  switch (shape) {
    case MarkerShape::kNone:
      return "";
    case MarkerShape::kCircle:
      return absl::StrCat("<circle cx=\"", Num(cx), "\" cy=\"", Num(cy), "\" r=\"4.0\" fill=\"",
                          color, "\"/>\n");
    case MarkerShape::kSquare:
      return absl::StrCat("<rect x=\"", Num(cx - 4), "\" y=\"", Num(cy - 4),
                          "\" width=\"8.0\" height=\"8.0\" fill=\"", color, "\"/>\n");
    case MarkerShape::kDiamond:
    case MarkerShape::kHollowDiamond: {
      const std::string fill = shape == MarkerShape::kDiamond ? color : "white";
      return absl::StrCat("<polygon points=\"", Num(cx), ",", Num(cy - 5.5), " ", Num(cx + 5.5),
                          ",", Num(cy), " ", Num(cx), ",", Num(cy + 5.5), " ", Num(cx - 5.5), ",",
                          Num(cy), "\" fill=\"", fill, "\" stroke=\"", color,
                          "\" stroke-width=\"1.5\"/>\n");
    }
  }
  return "";
}

std::string DashAttr(const std::string& dash) {
  return dash.empty() ? "" : absl::StrCat(" stroke-dasharray=\"", dash, "\"");
}

std::string Text(double x, double y, absl::string_view text, absl::string_view anchor,
                 int size = 12, absl::string_view extra = "") {
  return absl::StrCat("<text x=\"", Num(x), "\" y=\"", Num(y), "\" font-size=\"", size,
                      "\" text-anchor=\"", anchor, "\"", extra, ">", XmlEscape(text), "</text>\n");
}

std::string RenderPanel(const Panel& panel, double origin_x, double origin_y, int width,
                        int height) {
  Frame f{origin_x + kMarginLeft,
          origin_y + kMarginTop,
          static_cast<double>(width - kMarginLeft - kMarginRight),
          static_cast<double>(height - kMarginTop - kMarginBottom),
          panel.x,
          panel.y};
  std::string out;
  absl::StrAppend(&out, Text(f.left + f.width / 2, origin_y + 20, panel.title, "middle", 13,
                             " font-weight=\"bold\""));
  // Grid and ticks.
  for (double t : AxisTicks(panel.x)) {
    const double px = f.Px(t);
    absl::StrAppend(&out, "<line x1=\"", Num(px), "\" y1=\"", Num(f.top), "\" x2=\"", Num(px),
                    "\" y2=\"", Num(f.top + f.height), "\" stroke=\"#e5e5e5\"/>\n");
    absl::StrAppend(&out, Text(px, f.top + f.height + 16, TickLabel(t), "middle", 11));
  }
  for (double t : AxisTicks(panel.y)) {
    const double py = f.Py(t);
    absl::StrAppend(&out, "<line x1=\"", Num(f.left), "\" y1=\"", Num(py), "\" x2=\"",
                    Num(f.left + f.width), "\" y2=\"", Num(py), "\" stroke=\"#e5e5e5\"/>\n");
    absl::StrAppend(&out, Text(f.left - 6, py + 4, TickLabel(t), "end", 11));
  }
  absl::StrAppend(&out, "<rect x=\"", Num(f.left), "\" y=\"", Num(f.top), "\" width=\"",
                  Num(f.width), "\" height=\"", Num(f.height),
                  "\" fill=\"none\" stroke=\"#333333\"/>\n");
  absl::StrAppend(&out,
                  Text(f.left + f.width / 2, f.top + f.height + 38, panel.x.label, "middle", 12));
  const double ly = f.top + f.height / 2;
  absl::StrAppend(&out, Text(origin_x + 16, ly, panel.y.label, "middle", 12,
                             absl::StrCat(" transform=\"rotate(-90 ", Num(origin_x + 16), " ",
                                          Num(ly), ")\"")));
  // Reference lines.
  for (const HLine& h : panel.hlines) {
    if (!f.Usable(panel.y, h.y)) continue;
    const double py = f.Py(h.y);
    absl::StrAppend(&out, "<line x1=\"", Num(f.left), "\" y1=\"", Num(py), "\" x2=\"",
                    Num(f.left + f.width), "\" y2=\"", Num(py), "\" stroke=\"", h.color,
                    "\" stroke-width=\"1.5\"", DashAttr(h.dash), "/>\n");
    // The label sits above the line, or below it when the line runs along the top of the frame.
    const double label_y = py - f.top < 22 ? py + 13 : py - 4;
    if (!h.label.empty()) {
      absl::StrAppend(
          &out, Text(h.label_left ? f.left + 4 : f.left + f.width - 4, label_y, h.label,
                     h.label_left ? "start" : "end", 11, absl::StrCat(" fill=\"", h.color, "\"")));
    }
  }
  // Series.
  for (const Series& s : panel.series) {
    std::vector<std::pair<double, double>> px;
    std::vector<std::string> labels;
    for (size_t i = 0; i < s.points.size(); ++i) {
      const auto& [x, y] = s.points[i];
      if (!f.Usable(panel.x, x) || !f.Usable(panel.y, y) || !f.Inside(panel.x, x) ||
          !f.Inside(panel.y, y)) {
        continue;
      }
      px.push_back({f.Px(x), f.Py(y)});
      labels.push_back(i < s.point_labels.size() ? s.point_labels[i] : "");
      if (i < s.y_bars.size() && f.Usable(panel.y, s.y_bars[i].first) &&
          f.Usable(panel.y, s.y_bars[i].second)) {
        const double bx = f.Px(x), lo = f.Py(s.y_bars[i].first), hi = f.Py(s.y_bars[i].second);
        absl::StrAppend(&out, "<line x1=\"", Num(bx), "\" y1=\"", Num(lo), "\" x2=\"", Num(bx),
                        "\" y2=\"", Num(hi), "\" stroke=\"", s.color,
                        "\" stroke-width=\"1.5\"/>\n");
        for (double end : {lo, hi}) {
          absl::StrAppend(&out, "<line x1=\"", Num(bx - 4), "\" y1=\"", Num(end), "\" x2=\"",
                          Num(bx + 4), "\" y2=\"", Num(end), "\" stroke=\"", s.color,
                          "\" stroke-width=\"1.5\"/>\n");
        }
      }
    }
    if (s.line && px.size() >= 2) {
      std::string pts;
      for (const auto& [x, y] : px)
        absl::StrAppend(&pts, pts.empty() ? "" : " ", Num(x), ",", Num(y));
      absl::StrAppend(&out, "<polyline points=\"", pts, "\" fill=\"none\" stroke=\"", s.color,
                      "\" stroke-width=\"2\"", DashAttr(s.dash), "/>\n");
    }
    for (size_t i = 0; i < px.size(); ++i) {
      absl::StrAppend(&out, MarkerSvg(s.marker, px[i].first, px[i].second, s.color));
      if (!labels[i].empty()) {
        absl::StrAppend(&out, Text(px[i].first + 7, px[i].second - 6, labels[i], "start", 10,
                                   absl::StrCat(" fill=\"", s.color, "\"")));
      }
    }
  }
  if (!panel.empty_note.empty()) {
    absl::StrAppend(&out, Text(f.left + f.width / 2, f.top + f.height / 2, panel.empty_note,
                               "middle", 14, " fill=\"#666666\""));
  }
  return out;
}

struct LegendEntry {
  std::string label, color, dash;
  bool line = true;
  MarkerShape marker = MarkerShape::kNone;
};

}  // namespace

std::string PaletteColor(int i) {
  static const char* const kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
                                         "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#393b79"};
  return kPalette[i % 10];
}

std::string XmlEscape(absl::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::vector<double> AxisTicks(const Axis& axis) {
  std::vector<double> ticks;
  if (!(axis.max > axis.min) || !std::isfinite(axis.min) || !std::isfinite(axis.max)) return ticks;
  if (!axis.ticks.empty()) {
    for (double t : axis.ticks) {
      if (t >= axis.min && t <= axis.max && (!axis.log || t > 0)) ticks.push_back(t);
    }
    return ticks;
  }
  if (axis.log) {
    if (!(axis.min > 0)) return ticks;
    for (int e = static_cast<int>(std::ceil(std::log10(axis.min) - 1e-9));
         e <= static_cast<int>(std::floor(std::log10(axis.max) + 1e-9)); ++e) {
      ticks.push_back(std::pow(10.0, e));
    }
    return ticks;
  }
  const double raw = (axis.max - axis.min) / 6;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * magnitude;
    if (step >= raw) break;
  }
  const double first = std::ceil(axis.min / step - 1e-9) * step;
  for (int i = 0;; ++i) {
    const double t = first + i * step;
    if (t > axis.max + step * 1e-9) break;
    ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  }
  return ticks;
}

std::pair<double, double> AutoRange(const std::vector<double>& values, bool log,
                                    double fallback_min, double fallback_max) {
  double lo = INFINITY, hi = -INFINITY;
  for (double v : values) {
    if (!std::isfinite(v) || (log && v <= 0)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (!std::isfinite(lo)) return {fallback_min, fallback_max};
  if (log) {
    return {std::pow(10.0, std::floor(std::log10(lo))),
            std::pow(10.0, std::ceil(std::log10(hi) + (hi == lo ? 1e-9 : 0)))};
  }
  const double span = hi > lo ? hi - lo : std::max(std::fabs(hi), 1.0);
  return {lo - 0.08 * span, hi + 0.08 * span};
}

std::string RenderSvg(const Figure& figure) {
  const int panels = std::max<int>(1, figure.panels.size());
  const int columns = figure.columns > 0 ? std::min(figure.columns, panels) : panels;
  const int rows = (panels + columns - 1) / columns;
  const int width = columns * figure.panel_width;
  // The legend: one entry per distinct label, in order of first appearance.
  std::vector<LegendEntry> legend;
  std::set<std::string> labels;
  for (const Panel& p : figure.panels) {
    for (const Series& s : p.series) {
      if (s.label.empty() || !labels.insert(s.label).second) continue;
      legend.push_back({s.label, s.color, s.dash, s.line, s.marker});
    }
    for (const HLine& h : p.hlines) {
      const std::string& text = h.legend.empty() ? h.label : h.legend;
      if (text.empty() || !labels.insert(text).second) continue;
      legend.push_back({text, h.color, h.dash, true, MarkerShape::kNone});
    }
  }
  // Two legend columns when every label fits one, else one.
  size_t longest = 0;
  for (const LegendEntry& e : legend) longest = std::max(longest, e.label.size());
  const double legend_width = width - 2.0 * kMarginLeft;
  const int legend_columns = 36 + longest * kCharWidth <= legend_width / 2 ? 2 : 1;
  const int legend_rows = (static_cast<int>(legend.size()) + legend_columns - 1) / legend_columns;
  const int legend_top = kTitleHeight + rows * figure.panel_height + 8;
  std::vector<std::string> caption;
  for (const std::string& line : figure.caption) {
    for (std::string& part : Wrap(line, static_cast<size_t>((width - 24) / kCharWidth))) {
      caption.push_back(std::move(part));
    }
  }
  const int caption_top = legend_top + legend_rows * kLegendRowHeight + 10;
  const int height = caption_top + static_cast<int>(caption.size()) * kCaptionRowHeight + 8;

  std::string out = absl::StrCat("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", width,
                                 "\" height=\"", height, "\" viewBox=\"0 0 ", width, " ", height,
                                 "\" font-family=\"DejaVu Sans, sans-serif\">\n");
  absl::StrAppend(&out, "<rect width=\"", width, "\" height=\"", height, "\" fill=\"white\"/>\n");
  absl::StrAppend(&out, Text(width / 2.0, 22, figure.title, "middle", 15, " font-weight=\"bold\""));
  for (int i = 0; i < static_cast<int>(figure.panels.size()); ++i) {
    absl::StrAppend(&out, "<g>\n",
                    RenderPanel(figure.panels[i], (i % columns) * figure.panel_width,
                                kTitleHeight + (i / columns) * figure.panel_height,
                                figure.panel_width, figure.panel_height),
                    "</g>\n");
  }
  const double column_width = legend_width / legend_columns;
  for (size_t i = 0; i < legend.size(); ++i) {
    const LegendEntry& e = legend[i];
    const double x = kMarginLeft + (i % legend_columns) * column_width;
    const double y = legend_top + (i / legend_columns) * kLegendRowHeight + 9;
    if (e.line) {
      absl::StrAppend(&out, "<line x1=\"", Num(x), "\" y1=\"", Num(y), "\" x2=\"", Num(x + 28),
                      "\" y2=\"", Num(y), "\" stroke=\"", e.color, "\" stroke-width=\"2\"",
                      DashAttr(e.dash), "/>\n");
    }
    absl::StrAppend(&out, MarkerSvg(e.marker, x + 14, y, e.color));
    absl::StrAppend(&out, Text(x + 36, y + 4, e.label, "start", 11));
  }
  for (size_t i = 0; i < caption.size(); ++i) {
    absl::StrAppend(&out, Text(12, caption_top + i * kCaptionRowHeight + 11, caption[i], "start",
                               11, " fill=\"#444444\""));
  }
  absl::StrAppend(&out, "</svg>\n");
  return out;
}

}  // namespace kvgate::report

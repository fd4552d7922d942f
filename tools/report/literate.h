// Literate reports: a Markdown template holds the narrative, written by hand, and marked blocks
// that the report tool fills. The words outside the blocks are copied byte for byte; the tool
// never writes them.
//
// A block is two marker lines, each alone on its line, with nothing between them in a template:
//
//   <!-- report:begin speed_ceiling_table -->
//   <!-- report:end speed_ceiling_table -->
//
// A filled report keeps both markers and puts the block's content between them, so a reader of
// the report sees where the generated text starts and ends. Block names are [a-z0-9_]+.
//
// Usage:
//   absl::StatusOr<Template> t = ParseTemplate(bytes, "reports/templates/x.md");
//   absl::StatusOr<std::string> out = FillTemplate(*t, {{"table", "| a |\n"}}, header_line);

#ifndef KVGATE_TOOLS_REPORT_LITERATE_H_
#define KVGATE_TOOLS_REPORT_LITERATE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvgate::report {

// Narrative text (block_name empty) or a block to fill.
struct Segment {
  std::string text;        // narrative, byte for byte (empty for a block)
  std::string block_name;  // the block's name; empty for narrative
  int line = 0;            // 1-based line of the block's begin marker
};

struct Template {
  std::string file;  // where it was read, for messages
  std::vector<Segment> segments;

  // The names of its blocks, in order.
  std::vector<std::string> BlockNames() const;
};

// The marker lines (without their newline) of block `name`.
std::string BeginMarker(absl::string_view name);
std::string EndMarker(absl::string_view name);

// Parses a template; every error names file:line (an unclosed, nested, mismatched, repeated or
// non-empty block, a bad block name).
absl::StatusOr<Template> ParseTemplate(absl::string_view bytes, const std::string& file);

// The report: `header` (one line, without its newline, e.g. an HTML comment saying the file is
// generated) and a newline, then the template with each block filled from `blocks` (each content
// ends in a newline, or is empty). Fails unless the template's blocks are exactly the keys of
// `blocks`, naming the unknown and the missing ones.
absl::StatusOr<std::string> FillTemplate(const Template& tmpl,
                                         const std::map<std::string, std::string>& blocks,
                                         absl::string_view header);

// Fails unless every number in the template's words (outside the blocks) is also a number of one
// of `blocks`, so a figure is never written by hand: the error names file:line and the number.
// A number is a run of digits with an optional decimal part; a run glued to a name ("K1",
// "top-10", "float32") is part of the name, not a number.
absl::Status CheckNumbersInWords(const Template& tmpl,
                                 const std::map<std::string, std::string>& blocks);

}  // namespace kvgate::report

#endif  // KVGATE_TOOLS_REPORT_LITERATE_H_

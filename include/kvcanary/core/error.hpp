#pragma once
// One error type for every bad input kvcanary meets. The brief's rule: an error names the
// file and the field (or byte offset) so the user can fix the input without a debugger.
// Programs catch kvcanary::Error at the top, print what(), and exit with status 2.

#include <stdexcept>
#include <string>

namespace kvcanary {

class Error : public std::runtime_error {
 public:
  Error(std::string file, std::string field, const std::string& message)
      : std::runtime_error(format(file, field, message)), file_(std::move(file)), field_(std::move(field)) {}

  const std::string& file() const noexcept { return file_; }
  const std::string& field() const noexcept { return field_; }

 private:
  static std::string format(const std::string& file, const std::string& field, const std::string& message) {
    std::string out = file.empty() ? std::string("<input>") : file;
    if (!field.empty()) out += ": " + field;
    return out + ": " + message;
  }
  std::string file_, field_;
};

[[noreturn]] inline void fail(const std::string& file, const std::string& field, const std::string& message) {
  throw Error(file, field, message);
}

// Exit status for bad input, shared by every program (issue 2, section 7).
inline constexpr int kBadInputExitCode = 2;

}  // namespace kvcanary

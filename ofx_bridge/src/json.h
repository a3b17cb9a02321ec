// Just enough JSON for the daemon's answers: parse into a tree, read members, and quote strings
// for the settings we send. Parsing never throws; a malformed document gives a null value.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace latentween {

struct Json {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0.0;
  std::string text;
  std::vector<Json> items;
  std::map<std::string, Json> members;

  static Json parse(const std::string& document, bool* ok = nullptr);

  // A member of an object, or a shared null value when this is no object or has no such member.
  const Json& operator[](const std::string& key) const;
  bool is_null() const { return kind == Kind::Null; }
  std::string str(const std::string& fallback = "") const { return kind == Kind::String ? text : fallback; }
  double num(double fallback = 0.0) const { return kind == Kind::Number ? number : fallback; }
};

// "text" with JSON escapes, quotes included.
std::string json_quote(const std::string& text);

}  // namespace latentween

#include "json.h"

#include <cstdio>

namespace latentween {
namespace {

// Deep nesting is refused rather than recursed into: the daemon never sends it, a broken proxy might.
constexpr int kMaxDepth = 64;

struct Parser {
  const std::string& s;
  size_t i = 0;
  bool ok = true;

  void skip_space() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  }

  bool literal(const char* word) {
    size_t n = 0;
    while (word[n]) ++n;
    if (s.compare(i, n, word) != 0) return false;
    i += n;
    return true;
  }

  static void append_utf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  bool hex4(unsigned& code) {
    if (i + 4 > s.size()) return false;
    code = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s[i++];
      code <<= 4;
      if (c >= '0' && c <= '9') code |= c - '0';
      else if (c >= 'a' && c <= 'f') code |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') code |= c - 'A' + 10;
      else return false;
    }
    return true;
  }

  bool string(std::string& out) {
    if (i >= s.size() || s[i] != '"') return false;
    ++i;
    while (i < s.size()) {
      char c = s[i++];
      if (c == '"') return true;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i >= s.size()) return false;
      char e = s[i++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned code;
          if (!hex4(code)) return false;
          if (code >= 0xD800 && code < 0xDC00 && s.compare(i, 2, "\\u") == 0) {
            i += 2;
            unsigned low;
            if (!hex4(low)) return false;
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, code);
          break;
        }
        default: return false;
      }
    }
    return false;
  }

  // By hand, not strtod: hosts may run under a locale whose decimal mark is a comma.
  bool number(double& out) {
    size_t start = i;
    bool negative = i < s.size() && s[i] == '-';
    if (negative) ++i;
    double value = 0.0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') value = value * 10.0 + (s[i++] - '0');
    if (i < s.size() && s[i] == '.') {
      ++i;
      double scale = 0.1;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        value += (s[i++] - '0') * scale;
        scale *= 0.1;
      }
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
      ++i;
      bool down = i < s.size() && s[i] == '-';
      if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
      int exponent = 0;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9' && exponent < 400) exponent = exponent * 10 + (s[i++] - '0');
      for (int k = 0; k < exponent; ++k) value = down ? value / 10.0 : value * 10.0;
    }
    out = negative ? -value : value;
    return i > start + (negative ? 1 : 0);
  }

  Json value(int depth) {
    Json v;
    skip_space();
    if (i >= s.size() || depth > kMaxDepth) {
      ok = false;
      return v;
    }
    char c = s[i];
    if (c == '{') {
      ++i;
      v.kind = Json::Kind::Object;
      skip_space();
      if (i < s.size() && s[i] == '}') { ++i; return v; }
      while (ok) {
        skip_space();
        std::string key;
        if (!string(key)) { ok = false; break; }
        skip_space();
        if (i >= s.size() || s[i] != ':') { ok = false; break; }
        ++i;
        v.members[key] = value(depth + 1);
        skip_space();
        if (i < s.size() && s[i] == ',') { ++i; continue; }
        if (i < s.size() && s[i] == '}') { ++i; break; }
        ok = false;
      }
    } else if (c == '[') {
      ++i;
      v.kind = Json::Kind::Array;
      skip_space();
      if (i < s.size() && s[i] == ']') { ++i; return v; }
      while (ok) {
        v.items.push_back(value(depth + 1));
        skip_space();
        if (i < s.size() && s[i] == ',') { ++i; continue; }
        if (i < s.size() && s[i] == ']') { ++i; break; }
        ok = false;
      }
    } else if (c == '"') {
      v.kind = Json::Kind::String;
      if (!string(v.text)) ok = false;
    } else if (literal("true")) {
      v.kind = Json::Kind::Bool;
      v.boolean = true;
    } else if (literal("false")) {
      v.kind = Json::Kind::Bool;
    } else if (literal("null")) {
    } else {
      v.kind = Json::Kind::Number;
      if (!number(v.number)) ok = false;
    }
    return v;
  }
};

}  // namespace

Json Json::parse(const std::string& document, bool* ok) {
  Parser p{document};
  Json v = p.value(0);
  p.skip_space();
  bool good = p.ok && p.i == document.size();
  if (ok) *ok = good;
  return good ? v : Json();
}

const Json& Json::operator[](const std::string& key) const {
  static const Json null_value;
  if (kind != Kind::Object) return null_value;
  auto it = members.find(key);
  return it == members.end() ? null_value : it->second;
}

std::string json_quote(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace latentween

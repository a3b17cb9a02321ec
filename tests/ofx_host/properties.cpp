// The property suite over PropertySet, and the JSON the test host prints.
#include <cstdio>
#include <iostream>

#include "host.h"

namespace ofxtest {
namespace {

template <typename T>
void put(std::vector<T>& values, int index, const T& value) {
  if (static_cast<int>(values.size()) <= index) values.resize(static_cast<size_t>(index) + 1);
  values[static_cast<size_t>(index)] = value;
}

PropertySet* set_of(OfxPropertySetHandle handle) { return reinterpret_cast<PropertySet*>(handle); }

// A property read with the wrong type is a plug-in bug the tests should see, not a silent zero.
Property* find(OfxPropertySetHandle handle, const char* name, char type, OfxStatus& status) {
  status = kOfxStatOK;
  if (!handle || !name) {
    status = kOfxStatErrBadHandle;
    return nullptr;
  }
  auto& props = set_of(handle)->props;
  auto it = props.find(name);
  if (it == props.end()) {
    status = kOfxStatErrUnknown;
    return nullptr;
  }
  if (it->second.type != type) {
    g_state.problem(std::string("property ") + name + " read or written as the wrong type");
    status = kOfxStatErrValue;
    return nullptr;
  }
  return &it->second;
}

Property& make(OfxPropertySetHandle handle, const char* name, char type) {
  Property& p = set_of(handle)->props[name];
  if (p.strings.empty() && p.ints.empty() && p.doubles.empty() && p.pointers.empty()) p.type = type;
  if (p.type != type) g_state.problem(std::string("property ") + name + " written as the wrong type");
  p.type = type;
  return p;
}

OfxStatus set_pointer(OfxPropertySetHandle h, const char* n, int i, void* v) {
  if (!h) return kOfxStatErrBadHandle;
  put(make(h, n, 'p').pointers, i, v);
  return kOfxStatOK;
}
OfxStatus set_string(OfxPropertySetHandle h, const char* n, int i, const char* v) {
  if (!h) return kOfxStatErrBadHandle;
  put(make(h, n, 's').strings, i, std::string(v ? v : ""));
  return kOfxStatOK;
}
OfxStatus set_double(OfxPropertySetHandle h, const char* n, int i, double v) {
  if (!h) return kOfxStatErrBadHandle;
  put(make(h, n, 'd').doubles, i, v);
  return kOfxStatOK;
}
OfxStatus set_int(OfxPropertySetHandle h, const char* n, int i, int v) {
  if (!h) return kOfxStatErrBadHandle;
  put(make(h, n, 'i').ints, i, v);
  return kOfxStatOK;
}
OfxStatus set_pointer_n(OfxPropertySetHandle h, const char* n, int c, void* const* v) {
  for (int i = 0; i < c; ++i) set_pointer(h, n, i, v[i]);
  return h ? kOfxStatOK : kOfxStatErrBadHandle;
}
OfxStatus set_string_n(OfxPropertySetHandle h, const char* n, int c, const char* const* v) {
  for (int i = 0; i < c; ++i) set_string(h, n, i, v[i]);
  return h ? kOfxStatOK : kOfxStatErrBadHandle;
}
OfxStatus set_double_n(OfxPropertySetHandle h, const char* n, int c, const double* v) {
  for (int i = 0; i < c; ++i) set_double(h, n, i, v[i]);
  return h ? kOfxStatOK : kOfxStatErrBadHandle;
}
OfxStatus set_int_n(OfxPropertySetHandle h, const char* n, int c, const int* v) {
  for (int i = 0; i < c; ++i) set_int(h, n, i, v[i]);
  return h ? kOfxStatOK : kOfxStatErrBadHandle;
}

template <typename T>
OfxStatus get(const std::vector<T>& values, int index, T* out) {
  if (index < 0 || index >= static_cast<int>(values.size())) return kOfxStatErrBadIndex;
  *out = values[static_cast<size_t>(index)];
  return kOfxStatOK;
}

OfxStatus get_pointer(OfxPropertySetHandle h, const char* n, int i, void** v) {
  OfxStatus s;
  Property* p = find(h, n, 'p', s);
  return p ? get(p->pointers, i, v) : s;
}
OfxStatus get_string(OfxPropertySetHandle h, const char* n, int i, char** v) {
  OfxStatus s;
  Property* p = find(h, n, 's', s);
  if (!p) return s;
  if (i < 0 || i >= static_cast<int>(p->strings.size())) return kOfxStatErrBadIndex;
  *v = const_cast<char*>(p->strings[static_cast<size_t>(i)].c_str());
  return kOfxStatOK;
}
OfxStatus get_double(OfxPropertySetHandle h, const char* n, int i, double* v) {
  OfxStatus s;
  Property* p = find(h, n, 'd', s);
  return p ? get(p->doubles, i, v) : s;
}
OfxStatus get_int(OfxPropertySetHandle h, const char* n, int i, int* v) {
  OfxStatus s;
  Property* p = find(h, n, 'i', s);
  return p ? get(p->ints, i, v) : s;
}
OfxStatus get_pointer_n(OfxPropertySetHandle h, const char* n, int c, void** v) {
  for (int i = 0; i < c; ++i)
    if (OfxStatus s = get_pointer(h, n, i, v + i)) return s;
  return kOfxStatOK;
}
OfxStatus get_string_n(OfxPropertySetHandle h, const char* n, int c, char** v) {
  for (int i = 0; i < c; ++i)
    if (OfxStatus s = get_string(h, n, i, v + i)) return s;
  return kOfxStatOK;
}
OfxStatus get_double_n(OfxPropertySetHandle h, const char* n, int c, double* v) {
  for (int i = 0; i < c; ++i)
    if (OfxStatus s = get_double(h, n, i, v + i)) return s;
  return kOfxStatOK;
}
OfxStatus get_int_n(OfxPropertySetHandle h, const char* n, int c, int* v) {
  for (int i = 0; i < c; ++i)
    if (OfxStatus s = get_int(h, n, i, v + i)) return s;
  return kOfxStatOK;
}
OfxStatus reset(OfxPropertySetHandle h, const char* n) {
  if (!h) return kOfxStatErrBadHandle;
  return set_of(h)->props.erase(n) ? kOfxStatOK : kOfxStatErrUnknown;
}
OfxStatus dimension(OfxPropertySetHandle h, const char* n, int* count) {
  if (!h) return kOfxStatErrBadHandle;
  auto& props = set_of(h)->props;
  auto it = props.find(n);
  if (it == props.end()) return kOfxStatErrUnknown;
  const Property& p = it->second;
  *count = static_cast<int>(p.type == 's' ? p.strings.size() : p.type == 'i' ? p.ints.size()
                            : p.type == 'd' ? p.doubles.size() : p.pointers.size());
  return kOfxStatOK;
}

const OfxPropertySuiteV1 kPropertySuite = {
    set_pointer, set_string, set_double, set_int, set_pointer_n, set_string_n, set_double_n, set_int_n,
    get_pointer, get_string, get_double, get_int, get_pointer_n, get_string_n, get_double_n, get_int_n,
    reset, dimension};

}  // namespace

const OfxPropertySuiteV1* property_suite() { return &kPropertySuite; }

void PropertySet::set_string(const std::string& name, const std::string& value, int index) {
  ofxtest::set_string(reinterpret_cast<OfxPropertySetHandle>(this), name.c_str(), index, value.c_str());
}
void PropertySet::set_int(const std::string& name, int value, int index) {
  ofxtest::set_int(reinterpret_cast<OfxPropertySetHandle>(this), name.c_str(), index, value);
}
void PropertySet::set_double(const std::string& name, double value, int index) {
  ofxtest::set_double(reinterpret_cast<OfxPropertySetHandle>(this), name.c_str(), index, value);
}
void PropertySet::set_pointer(const std::string& name, void* value, int index) {
  ofxtest::set_pointer(reinterpret_cast<OfxPropertySetHandle>(this), name.c_str(), index, value);
}
std::string PropertySet::get_string(const std::string& name, int index) const {
  auto it = props.find(name);
  if (it == props.end() || it->second.type != 's' || index >= static_cast<int>(it->second.strings.size())) return "";
  return it->second.strings[static_cast<size_t>(index)];
}

std::string PropertySet::to_json() const {
  std::string out = "{";
  for (const auto& [name, p] : props) {
    if (out.size() > 1) out += ",";
    out += quote(name) + ":[";
    size_t count = p.type == 's' ? p.strings.size() : p.type == 'i' ? p.ints.size()
                   : p.type == 'd' ? p.doubles.size() : p.pointers.size();
    for (size_t i = 0; i < count; ++i) {
      if (i) out += ",";
      if (p.type == 's') out += quote(p.strings[i]);
      else if (p.type == 'i') out += std::to_string(p.ints[i]);
      else if (p.type == 'd') out += std::to_string(p.doubles[i]);
      else out += p.pointers[i] ? "\"pointer\"" : "null";
    }
    out += "]";
  }
  return out + "}";
}

std::string quote(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

void emit(const std::string& event, const std::string& fields) {
  static std::mutex mutex;  // renders on several threads: one whole line each
  std::lock_guard<std::mutex> lock(mutex);
  std::cout << "{\"event\":" << quote(event) << (fields.empty() ? "" : ",") << fields << "}" << std::endl;
}

}  // namespace ofxtest

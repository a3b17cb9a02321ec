// A minimal OpenFX host for tests: just enough of the property, image effect, parameter, message
// and progress suites to load a plug-in, describe it, create an instance and render it. Objects
// are plain structs; every OFX handle is a pointer to one of them.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "ofx_minimal.h"

namespace ofxtest {

struct Property {
  char type = 's';  // s string, i int, d double, p pointer
  std::vector<std::string> strings;
  std::vector<int> ints;
  std::vector<double> doubles;
  std::vector<void*> pointers;
};

struct PropertySet {
  std::map<std::string, Property> props;
  void set_string(const std::string& name, const std::string& value, int index = 0);
  void set_int(const std::string& name, int value, int index = 0);
  void set_double(const std::string& name, double value, int index = 0);
  void set_pointer(const std::string& name, void* value, int index = 0);
  std::string get_string(const std::string& name, int index = 0) const;
  std::string to_json() const;
};

struct Param {
  std::string name, type;
  PropertySet props;
  int int_value = 0;
  double double_value = 0.0;
  std::string string_value;
};

struct ParamSet {
  PropertySet* owner_props = nullptr;  // a param set shares its effect's property set
  std::map<std::string, std::unique_ptr<Param>> params;
  std::vector<std::string> order;
};

// Pixels kept as the harness's files have them: rows top to bottom, RGBA, 1 or 4 bytes a sample.
struct Picture {
  int width = 0, height = 0;
  bool is_float = false;
  std::vector<unsigned char> top_down;
};

struct Image {
  PropertySet props;  // first member: the image handle is a pointer to it
  std::vector<unsigned char> bottom_up;
  Picture* output = nullptr;  // set on Output images: written back on release
};

struct Clip {
  std::string name;
  PropertySet props;
  Picture* picture = nullptr;
  std::vector<double> allowed;  // strict hosts: the frame ranges the plug-in asked for (pairs)
};

struct Effect {
  PropertySet props;
  ParamSet params;
  std::map<std::string, std::unique_ptr<Clip>> clips;
  std::vector<std::string> clip_order;
};

// What the suites do, set by the test script. Renders may run on several threads at once.
struct HostState {
  int abort_after = 0;     // abort() answers 1 from its Nth call on; 0: never
  int abort_after_ms = 0;  // abort() answers 1 once this long has passed since the render began; 0: never
  std::atomic<int> abort_calls{0};
  std::chrono::steady_clock::time_point render_start;
  bool persistent_messages = true;  // false: a V2 message suite whose persistent calls are null (as Resolve's)
  bool strict_frames = false;  // refuse input frames outside those the plug-in said it needs
  bool moving = false;         // inputs change with time (the first sample holds the time)
  std::mutex mutex;            // guards the two members below
  std::set<Image*> live_images;
  std::vector<std::string> problems;  // plug-in calls that broke the API's rules
  void problem(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex);
    problems.push_back(text);
  }
  size_t live() {
    std::lock_guard<std::mutex> lock(mutex);
    return live_images.size();
  }
};

extern HostState g_state;
OfxHost* make_host();
const OfxPropertySuiteV1* property_suite();

// One JSON line on stdout; `fields` is the inside of an object, e.g. "\"a\":1".
void emit(const std::string& event, const std::string& fields = "");
std::string quote(const std::string& text);

}  // namespace ofxtest

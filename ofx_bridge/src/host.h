// The host's suites, fetched once at Load, and small typed readers over the property suite.
#pragma once

#include <string>

#include "ofx_minimal.h"

namespace latentween {

struct HostSuites {
  OfxHost* host = nullptr;
  const OfxPropertySuiteV1* props = nullptr;
  const OfxImageEffectSuiteV1* effects = nullptr;
  const OfxParameterSuiteV1* params = nullptr;
  const OfxMessageSuiteV1* message = nullptr;
  const OfxMessageSuiteV2* message2 = nullptr;  // optional; its persistent functions may be null (Resolve)
  const OfxProgressSuiteV1* progress = nullptr;  // optional
};

extern HostSuites g_host;

// Fetches the suites; false if a mandatory one is missing.
bool fetch_suites();

std::string prop_string(OfxPropertySetHandle set, const char* name, int index = 0, const std::string& fallback = "");
int prop_int(OfxPropertySetHandle set, const char* name, int index = 0, int fallback = 0);
double prop_double(OfxPropertySetHandle set, const char* name, int index = 0, double fallback = 0.0);
bool prop_has(OfxPropertySetHandle set, const char* name);

// Posts `text` on the instance: a persistent warning where the host has one, else a one-off message.
void post_warning(OfxImageEffectHandle effect, const std::string& text);
void clear_warning(OfxImageEffectHandle effect);

}  // namespace latentween

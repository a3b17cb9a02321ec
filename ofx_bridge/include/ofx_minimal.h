// The part of the OpenFX C API this plug-in uses, declared from the published OpenFX 1.4
// specification (openeffects.org). Only what Latentween calls or answers is here; names, string
// values and struct layouts follow the specification so any conforming host can load the plug-in.
// The test host in tests/ofx_host uses the same declarations.
#ifndef LATENTWEEN_OFX_MINIMAL_H
#define LATENTWEEN_OFX_MINIMAL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define LATENTWEEN_OFX_EXPORT __declspec(dllexport)
#else
#define LATENTWEEN_OFX_EXPORT __attribute__((visibility("default")))
#endif

// -- core (ofxCore.h) ----------------------------------------------------------------------------
typedef int OfxStatus;
typedef double OfxTime;
typedef struct OfxPropertySetStruct* OfxPropertySetHandle;
typedef struct OfxImageEffectStruct* OfxImageEffectHandle;
typedef struct OfxImageClipStruct* OfxImageClipHandle;
typedef struct OfxParamStruct* OfxParamHandle;
typedef struct OfxParamSetStruct* OfxParamSetHandle;
typedef struct OfxImageMemoryStruct* OfxImageMemoryHandle;

typedef struct OfxRectI { int x1, y1, x2, y2; } OfxRectI;
typedef struct OfxRectD { double x1, y1, x2, y2; } OfxRectD;
typedef struct OfxRangeD { double min, max; } OfxRangeD;

typedef struct OfxHost {
  OfxPropertySetHandle host;
  const void* (*fetchSuite)(OfxPropertySetHandle host, const char* suiteName, int suiteVersion);
} OfxHost;

typedef OfxStatus(OfxPluginEntryPoint)(const char* action, const void* handle,
                                       OfxPropertySetHandle inArgs, OfxPropertySetHandle outArgs);

typedef struct OfxPlugin {
  const char* pluginApi;
  int apiVersion;
  const char* pluginIdentifier;
  unsigned int pluginVersionMajor;
  unsigned int pluginVersionMinor;
  void (*setHost)(OfxHost* host);
  OfxPluginEntryPoint* mainEntry;
} OfxPlugin;

#define kOfxStatOK 0
#define kOfxStatFailed 1
#define kOfxStatErrFatal 2
#define kOfxStatErrUnknown 3
#define kOfxStatErrMissingHostFeature 4
#define kOfxStatErrUnsupported 5
#define kOfxStatErrExists 6
#define kOfxStatErrFormat 7
#define kOfxStatErrMemory 8
#define kOfxStatErrBadHandle 9
#define kOfxStatErrBadIndex 10
#define kOfxStatErrValue 11
#define kOfxStatReplyYes 12
#define kOfxStatReplyNo 13
#define kOfxStatReplyDefault 14
#define kOfxStatErrImageFormat 1000

#define kOfxActionLoad "OfxActionLoad"
#define kOfxActionUnload "OfxActionUnload"
#define kOfxActionDescribe "OfxActionDescribe"
#define kOfxActionCreateInstance "OfxActionCreateInstance"
#define kOfxActionDestroyInstance "OfxActionDestroyInstance"
#define kOfxActionPurgeCaches "OfxActionPurgeCaches"

#define kOfxPropTime "OfxPropTime"
#define kOfxPropName "OfxPropName"
#define kOfxPropLabel "OfxPropLabel"
#define kOfxPropType "OfxPropType"
#define kOfxPropInstanceData "OfxPropInstanceData"
#define kOfxPropPluginDescription "OfxPropPluginDescription"
#define kOfxPropVersion "OfxPropVersion"
#define kOfxPropVersionLabel "OfxPropVersionLabel"

#define kOfxBitDepthNone "OfxBitDepthNone"
#define kOfxBitDepthByte "OfxBitDepthByte"
#define kOfxBitDepthShort "OfxBitDepthShort"
#define kOfxBitDepthFloat "OfxBitDepthFloat"

// -- properties (ofxProperty.h) ------------------------------------------------------------------
#define kOfxPropertySuite "OfxPropertySuite"
typedef struct OfxPropertySuiteV1 {
  OfxStatus (*propSetPointer)(OfxPropertySetHandle, const char* property, int index, void* value);
  OfxStatus (*propSetString)(OfxPropertySetHandle, const char* property, int index, const char* value);
  OfxStatus (*propSetDouble)(OfxPropertySetHandle, const char* property, int index, double value);
  OfxStatus (*propSetInt)(OfxPropertySetHandle, const char* property, int index, int value);
  OfxStatus (*propSetPointerN)(OfxPropertySetHandle, const char* property, int count, void* const* value);
  OfxStatus (*propSetStringN)(OfxPropertySetHandle, const char* property, int count, const char* const* value);
  OfxStatus (*propSetDoubleN)(OfxPropertySetHandle, const char* property, int count, const double* value);
  OfxStatus (*propSetIntN)(OfxPropertySetHandle, const char* property, int count, const int* value);
  OfxStatus (*propGetPointer)(OfxPropertySetHandle, const char* property, int index, void** value);
  OfxStatus (*propGetString)(OfxPropertySetHandle, const char* property, int index, char** value);
  OfxStatus (*propGetDouble)(OfxPropertySetHandle, const char* property, int index, double* value);
  OfxStatus (*propGetInt)(OfxPropertySetHandle, const char* property, int index, int* value);
  OfxStatus (*propGetPointerN)(OfxPropertySetHandle, const char* property, int count, void** value);
  OfxStatus (*propGetStringN)(OfxPropertySetHandle, const char* property, int count, char** value);
  OfxStatus (*propGetDoubleN)(OfxPropertySetHandle, const char* property, int count, double* value);
  OfxStatus (*propGetIntN)(OfxPropertySetHandle, const char* property, int count, int* value);
  OfxStatus (*propReset)(OfxPropertySetHandle, const char* property);
  OfxStatus (*propGetDimension)(OfxPropertySetHandle, const char* property, int* count);
} OfxPropertySuiteV1;

// -- image effects (ofxImageEffect.h) ------------------------------------------------------------
#define kOfxImageEffectPluginApi "OfxImageEffectPluginAPI"
#define kOfxImageEffectPluginApiVersion 1

#define kOfxImageEffectActionDescribeInContext "OfxImageEffectActionDescribeInContext"
#define kOfxImageEffectActionRender "OfxImageEffectActionRender"
#define kOfxImageEffectActionGetFramesNeeded "OfxImageEffectActionGetFramesNeeded"

#define kOfxImageEffectContextTransition "OfxImageEffectContextTransition"
#define kOfxImageEffectContextGeneral "OfxImageEffectContextGeneral"

#define kOfxImageEffectTransitionSourceFromClipName "SourceFrom"
#define kOfxImageEffectTransitionSourceToClipName "SourceTo"
#define kOfxImageEffectOutputClipName "Output"
#define kOfxImageEffectTransitionParamName "Transition"

#define kOfxImageComponentRGBA "OfxImageComponentRGBA"
#define kOfxImagePreMultiplied "OfxImageAlphaPremultiplied"

#define kOfxImageEffectPropSupportedContexts "OfxImageEffectPropSupportedContexts"
#define kOfxImageEffectPropSupportedPixelDepths "OfxImageEffectPropSupportedPixelDepths"
#define kOfxImageEffectPropSupportedComponents "OfxImageEffectPropSupportedComponents"
#define kOfxImageEffectPluginPropGrouping "OfxImageEffectPluginPropGrouping"
#define kOfxImageEffectPluginRenderThreadSafety "OfxImageEffectPluginRenderThreadSafety"
#define kOfxImageEffectRenderInstanceSafe "OfxImageEffectRenderInstanceSafe"
#define kOfxImageEffectPluginPropHostFrameThreading "OfxImageEffectPluginPropHostFrameThreading"
#define kOfxImageEffectPropSupportsMultipleClipDepths "OfxImageEffectPropMultipleClipDepths"
#define kOfxImageEffectPropSupportsTiles "OfxImageEffectPropSupportsTiles"
#define kOfxImageEffectPropTemporalClipAccess "OfxImageEffectPropTemporalClipAccess"
#define kOfxImageEffectPropContext "OfxImageEffectPropContext"
#define kOfxImageEffectPropPixelDepth "OfxImageEffectPropPixelDepth"
#define kOfxImageEffectPropComponents "OfxImageEffectPropComponents"
#define kOfxImageEffectPropPreMultiplication "OfxImageEffectPropPreMultiplication"
#define kOfxImageEffectPropFrameRange "OfxImageEffectPropFrameRange"
#define kOfxImageEffectPropRenderScale "OfxImageEffectPropRenderScale"
#define kOfxImageEffectPropRenderWindow "OfxImageEffectPropRenderWindow"
#define kOfxImageEffectInstancePropEffectDuration "OfxImageEffectInstancePropEffectDuration"
#define kOfxImageClipPropOptional "OfxImageClipPropOptional"
#define kOfxImagePropData "OfxImagePropData"
#define kOfxImagePropBounds "OfxImagePropBounds"
#define kOfxImagePropRowBytes "OfxImagePropRowBytes"

// DaVinci Resolve's extension: set to 1 on a clip when the render is for a thumbnail. The string
// really does start with a 'k' (it is the macro's name, not the usual value without it).
#define kOfxImageClipPropThumbnail "kOfxImageClipPropThumbnail"

#define kOfxImageEffectSuite "OfxImageEffectSuite"
typedef struct OfxImageEffectSuiteV1 {
  OfxStatus (*getPropertySet)(OfxImageEffectHandle, OfxPropertySetHandle* propHandle);
  OfxStatus (*getParamSet)(OfxImageEffectHandle, OfxParamSetHandle* paramSet);
  OfxStatus (*clipDefine)(OfxImageEffectHandle, const char* name, OfxPropertySetHandle* propertySet);
  OfxStatus (*clipGetHandle)(OfxImageEffectHandle, const char* name, OfxImageClipHandle* clip,
                             OfxPropertySetHandle* propertySet);
  OfxStatus (*clipGetPropertySet)(OfxImageClipHandle, OfxPropertySetHandle* propHandle);
  OfxStatus (*clipGetImage)(OfxImageClipHandle, OfxTime time, const OfxRectD* region,
                            OfxPropertySetHandle* imageHandle);
  OfxStatus (*clipReleaseImage)(OfxPropertySetHandle imageHandle);
  OfxStatus (*clipGetRegionOfDefinition)(OfxImageClipHandle, OfxTime time, OfxRectD* bounds);
  int (*abort)(OfxImageEffectHandle);
  OfxStatus (*imageMemoryAlloc)(OfxImageEffectHandle, size_t nBytes, OfxImageMemoryHandle* memoryHandle);
  OfxStatus (*imageMemoryFree)(OfxImageMemoryHandle);
  OfxStatus (*imageMemoryLock)(OfxImageMemoryHandle, void** returnedPtr);
  OfxStatus (*imageMemoryUnlock)(OfxImageMemoryHandle);
} OfxImageEffectSuiteV1;

// -- parameters (ofxParam.h) ---------------------------------------------------------------------
#define kOfxParamTypeInteger "OfxParamTypeInteger"
#define kOfxParamTypeDouble "OfxParamTypeDouble"
#define kOfxParamTypeBoolean "OfxParamTypeBoolean"
#define kOfxParamTypeString "OfxParamTypeString"

#define kOfxParamPropType "OfxParamPropType"
#define kOfxParamPropDefault "OfxParamPropDefault"
#define kOfxParamPropMin "OfxParamPropMin"
#define kOfxParamPropMax "OfxParamPropMax"
#define kOfxParamPropDisplayMin "OfxParamPropDisplayMin"
#define kOfxParamPropDisplayMax "OfxParamPropDisplayMax"
#define kOfxParamPropHint "OfxParamPropHint"
#define kOfxParamPropAnimates "OfxParamPropAnimates"
#define kOfxParamPropStringMode "OfxParamPropStringMode"
#define kOfxParamPropEvaluateOnChange "OfxParamPropEvaluateOnChange"
#define kOfxParamStringIsSingleLine "OfxParamStringIsSingleLine"
#define kOfxParamStringIsMultiLine "OfxParamStringIsMultiLine"

#define kOfxParameterSuite "OfxParameterSuite"
typedef struct OfxParameterSuiteV1 {
  OfxStatus (*paramDefine)(OfxParamSetHandle, const char* paramType, const char* name,
                           OfxPropertySetHandle* propertySet);
  OfxStatus (*paramGetHandle)(OfxParamSetHandle, const char* name, OfxParamHandle* param,
                              OfxPropertySetHandle* propertySet);
  OfxStatus (*paramSetGetPropertySet)(OfxParamSetHandle, OfxPropertySetHandle* propHandle);
  OfxStatus (*paramGetPropertySet)(OfxParamHandle, OfxPropertySetHandle* propHandle);
  OfxStatus (*paramGetValue)(OfxParamHandle, ...);
  OfxStatus (*paramGetValueAtTime)(OfxParamHandle, OfxTime time, ...);
  OfxStatus (*paramGetDerivative)(OfxParamHandle, OfxTime time, ...);
  OfxStatus (*paramGetIntegral)(OfxParamHandle, OfxTime time1, OfxTime time2, ...);
  OfxStatus (*paramSetValue)(OfxParamHandle, ...);
  OfxStatus (*paramSetValueAtTime)(OfxParamHandle, OfxTime time, ...);
  OfxStatus (*paramGetNumKeys)(OfxParamHandle, unsigned int* numberOfKeys);
  OfxStatus (*paramGetKeyTime)(OfxParamHandle, unsigned int nthKey, OfxTime* time);
  OfxStatus (*paramGetKeyIndex)(OfxParamHandle, OfxTime time, int direction, int* index);
  OfxStatus (*paramDeleteKey)(OfxParamHandle, OfxTime time);
  OfxStatus (*paramDeleteAllKeys)(OfxParamHandle);
  OfxStatus (*paramCopy)(OfxParamHandle paramTo, OfxParamHandle paramFrom, OfxTime dstOffset,
                         const OfxRangeD* frameRange);
  OfxStatus (*paramEditBegin)(OfxParamSetHandle, const char* name);
  OfxStatus (*paramEditEnd)(OfxParamSetHandle);
} OfxParameterSuiteV1;

// -- messages (ofxMessage.h) ---------------------------------------------------------------------
#define kOfxMessageSuite "OfxMessageSuite"
#define kOfxMessageError "OfxMessageError"
#define kOfxMessageWarning "OfxMessageWarning"
#define kOfxMessageMessage "OfxMessageMessage"

typedef struct OfxMessageSuiteV1 {
  OfxStatus (*message)(void* handle, const char* messageType, const char* messageId, const char* format, ...);
} OfxMessageSuiteV1;

// V2 starts with V1's member, so a V2 pointer also serves V1 callers.
typedef struct OfxMessageSuiteV2 {
  OfxStatus (*message)(void* handle, const char* messageType, const char* messageId, const char* format, ...);
  OfxStatus (*setPersistentMessage)(void* handle, const char* messageType, const char* messageId,
                                    const char* format, ...);
  OfxStatus (*clearPersistentMessage)(void* handle);
} OfxMessageSuiteV2;

// -- progress (ofxProgress.h) --------------------------------------------------------------------
#define kOfxProgressSuite "OfxProgressSuite"
typedef struct OfxProgressSuiteV1 {
  OfxStatus (*progressStart)(void* effectInstance, const char* label);
  // kOfxStatReplyNo: the user pressed cancel.
  OfxStatus (*progressUpdate)(void* effectInstance, double progress);
  OfxStatus (*progressEnd)(void* effectInstance);
} OfxProgressSuiteV1;

// -- what every plug-in binary exports -----------------------------------------------------------
LATENTWEEN_OFX_EXPORT int OfxGetNumberOfPlugins(void);
LATENTWEEN_OFX_EXPORT OfxPlugin* OfxGetPlugin(int nth);

#ifdef __cplusplus
}
#endif

#endif  // LATENTWEEN_OFX_MINIMAL_H

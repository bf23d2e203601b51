/*
 * A PKCS#11 module for the tests that need a token whose PIN locks: it forwards every call to the
 * SoftHSM module named at build time (-DTARGET="…"), and keeps a user-PIN retry counter per slot
 * as smart cards and HSMs do. SoftHSM 2.6 has none: it answers CKR_PIN_INCORRECT for ever and
 * never CKR_PIN_LOCKED. After LOCK_AFTER wrong PINs in a row on a slot (-DLOCK_AFTER=n), C_Login
 * answers CKR_PIN_LOCKED, even with the right PIN, and C_GetTokenInfo reports CKF_USER_PIN_LOCKED,
 * until the process ends; before that it reports CKF_USER_PIN_COUNT_LOW and CKF_USER_PIN_FINAL_TRY
 * (PKCS#11 2.40 section 3.2, CK_TOKEN_INFO flags). Everything else is SoftHSM's own answer.
 * -DSTART_FAILURES=n starts every slot's counter at n, as a card that counted wrong PINs typed
 * on another host before this process saw it.
 *
 * Built by test/rig/softhsm.ts (buildPinLockModule) with gcc and pkcs11js's PKCS#11 headers.
 */
#include <dlfcn.h>
#include <string.h>

#define CK_PTR *
#define CK_DECLARE_FUNCTION(returnType, name) returnType name
#define CK_DECLARE_FUNCTION_POINTER(returnType, name) returnType(*name)
#define CK_CALLBACK_FUNCTION(returnType, name) returnType(*name)
#ifndef NULL_PTR
#define NULL_PTR 0
#endif
#include "pkcs11.h"

#define MAX_SLOTS 64
#ifndef START_FAILURES
#define START_FAILURES 0
#endif

static CK_FUNCTION_LIST_PTR target;
static CK_FUNCTION_LIST shim;
static struct {
  CK_SLOT_ID slot;
  int failures;
} counters[MAX_SLOTS];

static int *failures_of(CK_SLOT_ID slot) {
  for (int i = 0; i < MAX_SLOTS; i++) {
    if (counters[i].failures >= 0 && counters[i].slot == slot) return &counters[i].failures;
  }
  for (int i = 0; i < MAX_SLOTS; i++) {
    if (counters[i].failures == -1) {
      counters[i].slot = slot;
      counters[i].failures = START_FAILURES;
      return &counters[i].failures;
    }
  }
  return NULL;
}

static CK_RV shim_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
  CK_RV rv = target->C_GetTokenInfo(slot, info);
  int *f = failures_of(slot);
  if (rv != CKR_OK || f == NULL) return rv;
  if (*f >= LOCK_AFTER) info->flags |= CKF_USER_PIN_LOCKED;
  else if (*f == LOCK_AFTER - 1) info->flags |= CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW;
  else if (*f > 0) info->flags |= CKF_USER_PIN_COUNT_LOW;
  return rv;
}

static CK_RV shim_Login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len) {
  CK_SESSION_INFO si;
  CK_RV rv = target->C_GetSessionInfo(session, &si);
  if (rv != CKR_OK) return rv;
  int *f = failures_of(si.slotID);
  if (user == CKU_USER && f != NULL && *f >= LOCK_AFTER) return CKR_PIN_LOCKED;
  rv = target->C_Login(session, user, pin, len);
  if (user == CKU_USER && f != NULL) {
    if (rv == CKR_PIN_INCORRECT) (*f)++;
    else if (rv == CKR_OK) *f = 0;
  }
  return rv;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
  if (list == NULL) return CKR_ARGUMENTS_BAD;
  if (target == NULL) {
    void *lib = dlopen(TARGET, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) return CKR_GENERAL_ERROR;
    CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR) = (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(lib, "C_GetFunctionList");
    if (get == NULL || get(&target) != CKR_OK) return CKR_GENERAL_ERROR;
    for (int i = 0; i < MAX_SLOTS; i++) counters[i].failures = -1;
    memcpy(&shim, target, sizeof shim);
    shim.C_GetTokenInfo = shim_GetTokenInfo;
    shim.C_Login = shim_Login;
  }
  *list = &shim;
  return CKR_OK;
}

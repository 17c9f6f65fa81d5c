"""Status words a My Number card answers, with the JICSAP / ISO 7816-4 wording."""

from __future__ import annotations

from enum import IntEnum


class SW(IntEnum):
    OK = 0x9000
    VERIFY_FAILED_UNLIMITED = 0x6300
    WRONG_LENGTH = 0x6700
    LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881
    SECURE_MESSAGING_NOT_SUPPORTED = 0x6882
    COMMAND_CHAINING_NOT_SUPPORTED = 0x6884
    INCOMPATIBLE_FILE_STRUCTURE = 0x6981
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTH_METHOD_BLOCKED = 0x6984
    CONDITIONS_NOT_SATISFIED = 0x6985
    NO_CURRENT_EF = 0x6986
    SM_DATA_OBJECT_MISSING = 0x6987
    SM_DATA_INCORRECT = 0x6988
    SM_SESSION_BROKEN = 0x69FC
    WRONG_DATA = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    RECORD_NOT_FOUND = 0x6A83
    NOT_ENOUGH_MEMORY = 0x6A84
    INCORRECT_P1P2 = 0x6A86
    REFERENCED_DATA_NOT_FOUND = 0x6A88
    OFFSET_OUTSIDE_EF = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    SECURITY_ENVIRONMENT_FAULT = 0x66F1
    SELF_DIAGNOSIS_FAILURE = 0x6F00


_MEANINGS: dict[int, str] = {
    SW.OK: "normal completion",
    SW.VERIFY_FAILED_UNLIMITED: "verification failed (no retry limit)",
    SW.WRONG_LENGTH: "wrong length (Lc or Le)",
    SW.LOGICAL_CHANNEL_NOT_SUPPORTED: "logical channel not supported",
    SW.SECURE_MESSAGING_NOT_SUPPORTED: "secure messaging not supported",
    SW.COMMAND_CHAINING_NOT_SUPPORTED: "command chaining not supported",
    SW.INCOMPATIBLE_FILE_STRUCTURE: "command incompatible with file structure",
    SW.SECURITY_STATUS_NOT_SATISFIED: "security status not satisfied",
    SW.AUTH_METHOD_BLOCKED: "referenced key (PIN) is blocked",
    SW.CONDITIONS_NOT_SATISFIED: "conditions of use not satisfied",
    SW.NO_CURRENT_EF: "no current EF",
    SW.SM_DATA_OBJECT_MISSING: "expected secure-messaging data object missing",
    SW.SM_DATA_INCORRECT: "secure-messaging data object incorrect",
    SW.SM_SESSION_BROKEN: "secure-messaging session broken",
    SW.WRONG_DATA: "incorrect data in command",
    SW.FUNCTION_NOT_SUPPORTED: "function not supported",
    SW.FILE_NOT_FOUND: "file or application not found",
    SW.RECORD_NOT_FOUND: "record not found",
    SW.NOT_ENOUGH_MEMORY: "not enough memory space",
    SW.INCORRECT_P1P2: "incorrect parameters P1-P2",
    SW.REFERENCED_DATA_NOT_FOUND: "referenced data not found",
    SW.OFFSET_OUTSIDE_EF: "offset outside the EF",
    SW.INS_NOT_SUPPORTED: "instruction not supported",
    SW.CLA_NOT_SUPPORTED: "class not supported",
    SW.SECURITY_ENVIRONMENT_FAULT: "security environment fault",
    SW.SELF_DIAGNOSIS_FAILURE: "self-diagnosis failure",
}


def retries_left_sw(tries: int) -> int:
    """The 63Cx answer of VERIFY: x tries left (0-15)."""
    if not 0 <= tries <= 15:
        raise ValueError(f"a 63Cx status word holds 0-15 tries, not {tries}")
    return 0x63C0 | tries


def wrong_le_sw(exact: int) -> int:
    """The 6Cxx answer: resend with Le = ``exact`` (1-256; 256 is written 00)."""
    if not 1 <= exact <= 256:
        raise ValueError(f"a 6Cxx status word names an Le of 1-256, not {exact}")
    return 0x6C00 | (exact & 0xFF)


def describe(sw: int) -> str:
    """Human wording of a status word, e.g. for the CLI's raw APDU command."""
    if sw in _MEANINGS:
        return _MEANINGS[sw]
    if sw & 0xFFF0 == 0x63C0:
        return f"verification failed, {sw & 0x0F} tries left"
    if sw >> 8 == 0x61:
        return f"{sw & 0xFF or 256} more response bytes available (GET RESPONSE)"
    if sw >> 8 == 0x6C:
        return f"wrong Le; resend with Le={sw & 0xFF or 256}"
    return "unknown status word"

"""The one exception tree of cardsvc.

Every error the product raises on purpose derives from :class:`CardsvcError`. Each carries a short
stable ``code`` (used as the problem+json ``type`` suffix, the CLI's error line and the audit reason)
and a human :meth:`~CardsvcError.diagnostics` text that says what happened and what to do.
The CLI maps the tree to exit codes in one table, the API to HTTP status in one table.

    CardsvcError
    ├── ConfigError                      settings refused (default secret outside dev, bad path …)
    │   └── NotConfigured                this server is not set up for the request (no card keys …)
    ├── ProfileError                     a firmware profile file is malformed (names file and field)
    ├── CardError                        anything between the host and a card
    │   ├── TransportError               PC/SC failure not covered below
    │   │   ├── ReaderUnavailable        reader missing, unplugged, or pcscd not running
    │   │   ├── NoCard                   no card in the reader (after the wait timed out)
    │   │   ├── CardRemoved              card pulled during a command
    │   │   └── CardTimeout              the card or reader stopped answering
    │   ├── MalformedApdu                bytes that are not a valid command/response APDU
    │   ├── CardStatusError              the card answered a status word the driver did not expect
    │   │   ├── WrongKey                 authentication failed (attempts_left when the card says)
    │   │   ├── AuthenticationDelay      the card imposes a delay / is locked after failures
    │   │   ├── FileNotFound             the file or application does not exist
    │   │   └── AccessDenied             security status not satisfied
    │   ├── CardIntegrityError           a MAC, cryptogram or read-back did not match
    │   ├── UnknownCard                  no firmware profile matches the card
    │   └── CardSpoiled                  the card is in a state it cannot be brought back from
    ├── CryptoError                      bad key/IV/length passed to a protocol primitive
    ├── CredentialError
    │   ├── MalformedCredential          QR text / COSE / CWT not of our form
    │   ├── CredentialVerificationError  signature, validity, revocation, key state …
    │   ├── KeyStoreError                key store locked, missing, wrong passphrase, HSM missing
    │   └── BundleError                  trust bundle malformed, tampered or stale
    ├── RegistryError
    │   ├── ImportFileError              the member list cannot be read at all
    │   ├── InvalidRecord                one field of one record is invalid
    │   ├── NotFound                     no such member / organisation / card / batch
    │   ├── Conflict                     uniqueness or state conflict (duplicate, already issued …)
    │   └── PiiIntegrityError            an encrypted personal field does not open for its row/field
    ├── IssuanceError                    journal/batch workflow refused a step
    ├── AuditIntegrityError              the audit hash chain does not verify (names the first bad row)
    ├── ServerUnavailable                a cardsvc server did not answer or failed (5xx), e.g. for `tap`
    └── AccessError
        ├── AuthenticationRequired       no or bad credentials
        ├── PermissionDenied             the role may not do this
        └── RateLimited                  too many requests (retry_after seconds)

Errors never carry personal data: messages name card numbers, rows and fields, never names, ID
numbers or phones.
"""

from __future__ import annotations


class CardsvcError(Exception):
    """Base of every error cardsvc raises on purpose."""

    code = "cardsvc_error"
    hint = ""

    def __init__(self, message: str = "", *, hint: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        if hint is not None:
            self.hint = hint

    @property
    def message(self) -> str:
        return str(self.args[0])

    def diagnostics(self) -> str:
        """A human explanation: what happened and, when known, what to do next."""
        text = f"{self.message} [{self.code}]"
        return f"{text}\n  hint: {self.hint}" if self.hint else text


class ConfigError(CardsvcError):
    """The configuration is refused."""

    code = "config"


class NotConfigured(ConfigError):
    """The server is not set up for this request (e.g. no card keys loaded); an operator must act.

    The message is fixed: what exactly is missing (key names, paths) goes to the server log only.
    """

    code = "not_configured"

    def __init__(self) -> None:
        super().__init__("this server is not configured for this request")


class ProfileError(CardsvcError):
    """A firmware profile is malformed or inconsistent."""

    code = "profile"

    def __init__(self, message: str, *, file: str, field: str = "") -> None:
        self.file = file
        self.field = field
        where = f"{file}: {field}" if field else file
        super().__init__(f"{where}: {message}")


# --- cards -------------------------------------------------------------------------------------


class CardError(CardsvcError):
    """Something went wrong between the host and a card."""

    code = "card"


class TransportError(CardError):
    """The PC/SC layer failed."""

    code = "transport"


class ReaderUnavailable(TransportError):
    """The reader is missing, unplugged, or the PC/SC service is not running."""

    code = "reader_unavailable"
    hint = "check the reader cable and that pcscd is running (`cardsvc readers`)"


class NoCard(TransportError):
    """No card is present in the reader."""

    code = "no_card"
    hint = "place a card on the reader"


class CardRemoved(TransportError):
    """The card was removed while a command was running."""

    code = "card_removed"
    hint = "put the card back and run the step again; the journal knows where it stopped"


class CardTimeout(TransportError):
    """The card or reader stopped answering within the time limit."""

    code = "card_timeout"


class MalformedApdu(CardError):
    """Bytes that are not a valid APDU."""

    code = "malformed_apdu"


class CardStatusError(CardError):
    """The card answered with a status word the driver did not expect."""

    code = "card_status"

    def __init__(self, message: str, *, sw: int, hint: str | None = None) -> None:
        self.sw = sw
        super().__init__(f"{message} (SW {sw:04X})", hint=hint)


class WrongKey(CardStatusError):
    """Authentication with a card key failed. Do not try again with the same key."""

    code = "wrong_key"
    hint = "do not retry: the card counts failures; check the key version and master key"

    def __init__(self, message: str, *, sw: int, attempts_left: int | None = None) -> None:
        self.attempts_left = attempts_left
        left = "" if attempts_left is None else f", {attempts_left} attempts left"
        super().__init__(f"{message}{left}", sw=sw)


class AuthenticationDelay(CardStatusError):
    """The card refuses authentication for now, or for good, after repeated failures."""

    code = "auth_delay"


class FileNotFound(CardStatusError):
    """The file or application does not exist on the card."""

    code = "file_not_found"

    def __init__(self, message: str, *, sw: int, fid: str = "") -> None:
        self.fid = fid
        super().__init__(message, sw=sw)


class AccessDenied(CardStatusError):
    """The card's security status does not allow the command."""

    code = "access_denied"


class CardIntegrityError(CardError):
    """A MAC, cryptogram or read-back from the card did not match."""

    code = "card_integrity"


class UnknownCard(CardError):
    """No firmware profile matches this card."""

    code = "unknown_card"
    hint = "`cardsvc readers` shows the ATR; add a firmware profile if the card is supported"


class CardSpoiled(CardError):
    """The card cannot be brought to a known good state; set it aside."""

    code = "card_spoiled"


class CryptoError(CardsvcError):
    """A protocol primitive got an input of the wrong size or form."""

    code = "crypto"


# --- credentials -------------------------------------------------------------------------------


class CredentialError(CardsvcError):
    """Credential, key store or trust bundle failure."""

    code = "credential"


class MalformedCredential(CredentialError):
    """The QR text or credential bytes are not of our form."""

    code = "malformed_credential"

    def __init__(self, message: str, *, reason: str = "malformed") -> None:
        self.reason = reason
        super().__init__(message)


class CredentialVerificationError(CredentialError):
    """The credential failed a verification check."""

    code = "credential_invalid"

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class KeyStoreError(CredentialError):
    """The key store cannot be opened or does not hold the key asked for."""

    code = "key_store"


class BundleError(CredentialError):
    """The trust bundle is malformed, tampered with or stale."""

    code = "bundle"

    def __init__(self, message: str, *, reason: str = "bundle_invalid") -> None:
        self.reason = reason
        super().__init__(message)


# --- registry ----------------------------------------------------------------------------------


class RegistryError(CardsvcError):
    """Member registry failure."""

    code = "registry"


class ImportFileError(RegistryError):
    """The member list cannot be read (``reason``, e.g. ``missing_columns``; ``columns`` names them)."""

    code = "import_file"

    def __init__(self, message: str = "", *, reason: str | None = None, hint: str | None = None,
                 columns: tuple[str, ...] = ()) -> None:
        self.reason = reason
        self.columns = columns  # header labels as the import template spells them, never cell data
        super().__init__(message, hint=hint)

    def diagnostics(self) -> str:
        tag = f"{self.code}.{self.reason}" if self.reason else self.code
        text = f"{self.message} [{tag}]"
        return f"{text}\n  hint: {self.hint}" if self.hint else text


class InvalidRecord(RegistryError):
    """A field of a record is invalid."""

    code = "invalid_record"

    def __init__(self, message: str, *, field: str, reason: str = "invalid", value: str = "") -> None:
        self.field = field
        self.reason = reason
        self.value = value  # what the user typed (a code or id, never personal data): pages echo it
        super().__init__(f"{field}: {message}")


class NotFound(RegistryError):
    """The thing asked for does not exist (``reason`` names what, e.g. ``unknown_card``)."""

    code = "not_found"

    def __init__(self, message: str = "", *, reason: str | None = None, hint: str | None = None) -> None:
        self.reason = reason
        super().__init__(message, hint=hint)


class Conflict(RegistryError):
    """The change conflicts with existing data or state (``reason``, e.g. ``quota_exhausted``)."""

    code = "conflict"

    def __init__(self, message: str = "", *, reason: str | None = None, hint: str | None = None) -> None:
        self.reason = reason
        super().__init__(message, hint=hint)


class PiiIntegrityError(RegistryError):
    """An encrypted personal field does not open: wrong row, wrong field, tampered or missing key."""

    code = "pii_integrity"


class IssuanceError(CardsvcError):
    """The issuance workflow refused a step."""

    code = "issuance"


class AuditIntegrityError(CardsvcError):
    """The audit log's hash chain does not verify; ``index`` is the first bad row."""

    code = "audit_integrity"

    def __init__(self, message: str, *, index: int) -> None:
        self.index = index
        super().__init__(f"audit row {index}: {message}")


# --- access ------------------------------------------------------------------------------------


class ServerUnavailable(CardsvcError):
    """The cardsvc server could not be reached, timed out, or answered with a server error."""

    code = "server_unavailable"
    hint = "check the server URL and the network; the server's log says more about a 5xx"


class AccessError(CardsvcError):
    """Authentication or authorisation failure."""

    code = "access"


class AuthenticationRequired(AccessError):
    """No valid credentials were presented."""

    code = "authentication_required"


class PermissionDenied(AccessError):
    """The caller's role may not do this."""

    code = "permission_denied"


class RateLimited(AccessError):
    """Too many requests."""

    code = "rate_limited"

    def __init__(self, message: str = "too many requests", *, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(message)

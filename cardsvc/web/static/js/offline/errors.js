// The one error type of the offline modules: a machine-readable reason code (the same codes as
// cardsvc.errors.MalformedCredential / BundleError / CredentialVerificationError) and a message.

export class VerifyError extends Error {
  constructor(reason, message = reason) {
    super(message);
    this.name = "VerifyError";
    this.reason = reason;
  }
}

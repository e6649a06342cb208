/// What kind of refusal a domain error is, independent of any transport. The HTTP edge turns a
/// kind into a status code in exactly one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is well-formed but breaks a rule.
    Invalid,
    /// Credentials are missing or wrong.
    Unauthenticated,
    /// The caller is known but may not do this.
    Forbidden,
    /// The thing asked for does not exist (or is not the caller's to see).
    NotFound,
    /// The request clashes with the current state.
    Conflict,
    /// The account or credential is locked for a while (or until an admin acts).
    Locked,
}

//! Every stable problem `code` Warden answers with, its HTTP status and its title: one list.
//! Use cases and handlers name a variant; the wire slug, the status, the OpenAPI descriptions of
//! problem responses and `docs/problems.md` all come from here.

macro_rules! problem_codes {
    ($($variant:ident = $slug:literal, $status:literal, $title:literal;)*) => {
        /// A stable slug that clients may match on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ProblemCode {
            $($variant,)*
        }

        impl ProblemCode {
            pub const ALL: &'static [ProblemCode] = &[$(ProblemCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ProblemCode::$variant => $slug,)*
                }
            }

            /// The HTTP status every response with this code has.
            pub fn status(self) -> u16 {
                match self {
                    $(ProblemCode::$variant => $status,)*
                }
            }

            /// What the problem is, the same for every occurrence (RFC 9457 `title`).
            pub fn title(self) -> &'static str {
                match self {
                    $(ProblemCode::$variant => $title,)*
                }
            }
        }
    };
}

problem_codes! {
    // 400: the request could not be read.
    MalformedJson = "malformed_json", 400, "The body is not the JSON this operation takes.";
    MalformedQuery = "malformed_query", 400, "The query string is not what this operation takes.";
    MalformedForm = "malformed_form", 400, "The form body is not what this operation takes.";
    InvalidCursor = "invalid_cursor", 400, "The cursor is not one this server handed out.";
    LogoutTokenInvalid = "logout_token_invalid", 400, "The logout token is not one the identity provider signed for Warden.";
    // 401: who is asking is not established.
    Unauthenticated = "unauthenticated", 401, "A valid bearer token is required.";
    InvalidCredentials = "invalid_credentials", 401, "The email or password is wrong.";
    ChallengeInvalid = "challenge_invalid", 401, "The login challenge is unknown, used or expired; log in again.";
    MfaCodeInvalid = "mfa_code_invalid", 401, "The code is wrong or was used already.";
    SsoTokenInvalid = "sso_token_invalid", 401, "The identity provider's answer could not be verified; sign in again.";
    SsoProviderRefused = "sso_provider_refused", 401, "The identity provider did not sign you in.";
    LoginCodeInvalid = "login_code_invalid", 401, "The login code is unknown, used or expired; sign in again.";
    PasskeyRefused = "passkey_refused", 401, "The passkey was refused; try again or use another way to sign in.";
    // 403: established, but not allowed.
    InsufficientScope = "insufficient_scope", 403, "This API token lacks a scope the operation needs.";
    SessionRequired = "session_required", 403, "This needs a session; API tokens cannot do it.";
    MfaEnrollmentRequired = "mfa_enrollment_required", 403, "A workspace of this account requires MFA: enroll a second factor first.";
    AdminRequired = "admin_required", 403, "This needs a platform administrator.";
    AuditorRequired = "auditor_required", 403, "This needs a platform auditor or administrator.";
    ScopeNotAllowed = "scope_not_allowed", 403, "Only platform administrators may grant this scope.";
    AccountHolderRequired = "account_holder_required", 403, "Only an account holder of the workspace may do this.";
    SupervisorRequired = "supervisor_required", 403, "Only account holders and supervisors of the workspace may do this.";
    CurrentPasswordInvalid = "current_password_invalid", 403, "The current password is wrong.";
    PasswordInvalid = "password_invalid", 403, "The password is wrong.";
    ReauthenticationFailed = "reauthentication_failed", 403, "The password or code is wrong.";
    OriginNotAllowed = "origin_not_allowed", 403, "This origin may not call Warden from a browser.";
    CrossSiteRequest = "cross_site_request", 403, "This form did not come from Warden's own pages; reload the page and send it again.";
    PinInvalid = "pin_invalid", 403, "The PIN is wrong.";
    SsoAccountUnknown = "sso_account_unknown", 403, "No account has this identity, and this provider does not create accounts.";
    SsoNotAMember = "sso_not_a_member", 403, "This workspace's provider signs in only members who linked it from their settings.";
    // 404
    NotFound = "not_found", 404, "There is nothing here.";
    AccountNotFound = "account_not_found", 404, "No such account.";
    AccountErased = "account_erased", 404, "The account was erased.";
    SessionNotFound = "session_not_found", 404, "No such live session.";
    TokenNotFound = "token_not_found", 404, "No such live API token.";
    AccessRequestNotFound = "access_request_not_found", 404, "No such open access request.";
    WorkspaceNotFound = "workspace_not_found", 404, "No such workspace.";
    MemberNotFound = "member_not_found", 404, "No such member.";
    IdentityProviderNotFound = "identity_provider_not_found", 404, "No such identity provider.";
    IdentityNotFound = "identity_not_found", 404, "This identity provider is not linked to the account.";
    PasskeyNotFound = "passkey_not_found", 404, "No such passkey.";
    // 405
    MethodNotAllowed = "method_not_allowed", 405, "This path does not answer to this method.";
    // 413
    PayloadTooLarge = "payload_too_large", 413, "The body is larger than this operation takes.";
    HeadersTooLarge = "headers_too_large", 431, "The request's headers are larger than Warden takes.";
    // 409: the state of things does not allow it.
    EmailTaken = "email_taken", 409, "An account with this email already exists.";
    TokenNameTaken = "token_name_taken", 409, "A live API token of this account already has this name.";
    TotpAlreadyEnabled = "totp_already_enabled", 409, "TOTP is already on; turn it off before enrolling again.";
    TotpNotEnabled = "totp_not_enabled", 409, "TOTP is not on for this account.";
    NoPendingEnrollment = "no_pending_enrollment", 409, "No enrollment is waiting for confirmation.";
    EmailMfaAlreadyEnabled = "email_mfa_already_enabled", 409, "Emailed codes are already on.";
    EmailMfaNotEnabled = "email_mfa_not_enabled", 409, "Emailed codes are not on for this account.";
    PinNotSet = "pin_not_set", 409, "No reporting PIN is set.";
    WorkspaceExists = "workspace_exists", 409, "The workspace exists already.";
    AlreadyMember = "already_member", 409, "The account is a member already.";
    LastAccountHolder = "last_account_holder", 409, "A workspace keeps at least one account holder.";
    ArchivalOff = "archival_off", 409, "Archival is off for this workspace.";
    PasswordNotSet = "password_not_set", 409, "This account has no password yet; set one through a password reset.";
    SsoLinkRequired = "sso_link_required", 409, "An account has this address: sign in to it and link the provider from your settings.";
    IdentityAlreadyLinked = "identity_already_linked", 409, "This identity provider is linked to the account already.";
    IdentityTaken = "identity_taken", 409, "This identity is linked to another account.";
    LastWayToSignIn = "last_way_to_sign_in", 409, "Unlinking it would leave the account with no way to sign in.";
    PasskeyExists = "passkey_exists", 409, "This passkey is registered already.";
    NoPasskey = "no_passkey", 409, "The account has no passkey.";
    PasskeysOff = "passkeys_off", 409, "Passkeys are off: Warden's public URL names no domain (see WARDEN_WEBAUTHN_RP_ID).";
    // 422: readable, but not acceptable.
    InvalidEmail = "invalid_email", 422, "This is not an email address.";
    PasswordTooShort = "password_too_short", 422, "A password needs at least 8 characters.";
    PasswordTooLong = "password_too_long", 422, "A password has at most 128 characters.";
    PasswordTooCommon = "password_too_common", 422, "This password is too common or too easy to guess.";
    DisplayNameTooLong = "display_name_too_long", 422, "The display name is too long.";
    DeviceNameTooLong = "device_name_too_long", 422, "The device name is too long.";
    ResetTokenInvalid = "reset_token_invalid", 422, "The password reset token is invalid, used or expired.";
    InvalidCodeFormat = "invalid_code_format", 422, "The code is not in the format of its method.";
    ConfirmationCodeInvalid = "confirmation_code_invalid", 422, "The confirming code is wrong or no longer valid.";
    ReauthenticationRequired = "reauthentication_required", 422, "Give the password, a current code or a passkey.";
    InvalidTokenName = "invalid_token_name", 422, "A token name has 1 to 100 characters.";
    ExpiresAtInPast = "expires_at_in_past", 422, "The expiry must be in the future.";
    InvalidPin = "invalid_pin", 422, "A PIN is 4 to 8 digits.";
    InvalidReason = "invalid_reason", 422, "A reason has 1 to 2000 characters.";
    InvalidWorkspaceName = "invalid_workspace_name", 422, "A workspace name has 1 to 100 characters.";
    ArchivalDaysOutOfRange = "archival_days_out_of_range", 422, "Archival days are 1 to 3650, or null to keep forever.";
    CutoffInFuture = "cutoff_in_future", 422, "A purge cut-off cannot be in the future.";
    InvalidIdentityProvider = "invalid_identity_provider", 422, "The identity provider's settings are not usable.";
    WorkspaceProviderTooBroad = "workspace_provider_too_broad", 422, "A workspace's provider may neither create accounts nor link them by address.";
    ReturnToNotAllowed = "return_to_not_allowed", 422, "The return address is not one of the allowed frontend origins.";
    SsoAttemptInvalid = "sso_attempt_invalid", 422, "The sign-in attempt is unknown, used, expired or from another browser; start again.";
    SsoIssuerMismatch = "sso_issuer_mismatch", 422, "The answer names another issuer than the provider's (RFC 9207).";
    PasskeyRegistrationInvalid = "passkey_registration_invalid", 422, "No passkey registration is waiting, or it expired or was answered; start again.";
    PasskeyRegistrationRefused = "passkey_registration_refused", 422, "The authenticator's answer does not complete this registration.";
    PasskeyCeremonyInvalid = "passkey_ceremony_invalid", 422, "No passkey ceremony is waiting for this answer, or it expired or was answered; ask for options again.";
    PasskeyInvalid = "passkey_invalid", 422, "The credential is not a WebAuthn response of the kind this operation takes.";
    InvalidPasskeyName = "invalid_passkey_name", 422, "A passkey name has 1 to 64 characters.";
    // 423: locked for now.
    AccountLocked = "account_locked", 423, "The account is locked.";
    PinLocked = "pin_locked", 423, "Too many wrong PINs; try again later.";
    // 429
    RateLimited = "rate_limited", 429, "This API token spent its requests for this minute.";
    TooManyAttempts = "too_many_attempts", 429, "Too many attempts from this client; retry later.";
    // 500
    InternalError = "internal_error", 500, "An internal error occurred.";
    // 503: try again shortly.
    DatabaseUnavailable = "database_unavailable", 503, "The database is unavailable; try again shortly.";
    Contended = "contended", 503, "Too many concurrent changes to this account; retry.";
    ViewsLagging = "views_lagging", 503, "The change is recorded but not yet effective everywhere; retry shortly.";
    RevocationPending = "revocation_pending", 503, "The change is recorded but a Warden process has not confirmed it yet; retry shortly.";
    SsoProviderUnavailable = "sso_provider_unavailable", 503, "The identity provider cannot be reached; try again shortly.";
    Busy = "busy", 503, "Warden has too much of this work in hand; try again shortly.";
}

impl ProblemCode {
    pub fn parse(slug: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == slug)
    }
}

impl std::fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The table of `docs/problems.md`.
pub fn markdown_table() -> String {
    let mut table = String::from("| code | status | title |\n|---|---|---|\n");
    for code in ProblemCode::ALL {
        table.push_str(&format!(
            "| `{}` | {} | {} |\n",
            code.as_str(),
            code.status(),
            code.title()
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_code_is_listed_once_with_a_status_and_a_title() {
        let slugs: HashSet<&str> = ProblemCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(slugs.len(), ProblemCode::ALL.len());
        for code in ProblemCode::ALL {
            assert!((400..600).contains(&code.status()), "{code}");
            assert!(code.title().ends_with('.'), "{code}");
            assert_eq!(ProblemCode::parse(code.as_str()), Some(*code));
        }
    }

    #[test]
    fn the_documented_table_is_the_list() {
        let doc = include_str!("../../docs/problems.md");
        assert!(
            doc.contains(&markdown_table()),
            "docs/problems.md is stale: paste the table `warden problems` prints"
        );
    }
}

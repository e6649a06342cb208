//! What the first step of a login leads to. One place, so that adding a login method (SSO) is one
//! arm here.

use super::events::MfaMethod;
use crate::shared::WorkspaceId;

/// How the first step proved who the user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstFactor {
    Password,
    /// A trusted identity provider: it has already applied its own second factor.
    Sso,
    /// A passkey with user verification: something held and something known or been, at once.
    Passkey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginDecision {
    /// A full session.
    Session,
    /// A second factor is due.
    Challenge(Vec<MfaMethod>),
    /// A workspace requires MFA and the account has none: a session that may only enroll a factor.
    EnrollmentOnly,
}

pub fn decide(
    first: FirstFactor,
    factors: Vec<MfaMethod>,
    required_by: &[WorkspaceId],
) -> LoginDecision {
    match first {
        FirstFactor::Sso | FirstFactor::Passkey => LoginDecision::Session,
        FirstFactor::Password if !factors.is_empty() => LoginDecision::Challenge(factors),
        FirstFactor::Password if !required_by.is_empty() => LoginDecision::EnrollmentOnly,
        FirstFactor::Password => LoginDecision::Session,
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    const POLICY: [WorkspaceId; 1] = [WorkspaceId(Uuid::from_u128(1))];

    #[test]
    fn a_password_login_with_a_factor_is_challenged() {
        assert_eq!(
            decide(FirstFactor::Password, vec![MfaMethod::Totp], &[]),
            LoginDecision::Challenge(vec![MfaMethod::Totp])
        );
    }

    #[test]
    fn a_policy_without_a_factor_means_enrollment_first() {
        assert_eq!(
            decide(FirstFactor::Password, vec![], &POLICY),
            LoginDecision::EnrollmentOnly
        );
        assert_eq!(
            decide(FirstFactor::Password, vec![], &[]),
            LoginDecision::Session
        );
    }

    #[test]
    fn sso_skips_the_second_step_because_the_identity_provider_is_trusted() {
        assert_eq!(
            decide(FirstFactor::Sso, vec![MfaMethod::Totp], &POLICY),
            LoginDecision::Session
        );
    }

    #[test]
    fn a_user_verified_passkey_is_a_second_factor_of_its_own_under_a_policy_too() {
        assert_eq!(
            decide(FirstFactor::Passkey, vec![MfaMethod::Passkey], &POLICY),
            LoginDecision::Session
        );
    }
}

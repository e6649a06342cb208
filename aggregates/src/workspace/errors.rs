use crate::shared::ErrorKind;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorkspaceError {
    #[error("no such workspace")]
    NotFound,
    #[error("the workspace exists already")]
    AlreadyCreated,
    #[error("only an account holder may do this")]
    AccountHolderRequired,
    #[error("the account is a member already")]
    AlreadyMember,
    #[error("no such member")]
    MemberNotFound,
    #[error("a workspace keeps at least one account holder")]
    LastAccountHolder,
    #[error("archival is off for this workspace")]
    ArchivalOff,
    #[error("archival days are 1 to 3650, or null to keep forever")]
    ArchivalDaysOutOfRange,
    #[error("a purge cut-off cannot be in the future")]
    CutoffInFuture,
}

impl WorkspaceError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound | Self::MemberNotFound => ErrorKind::NotFound,
            Self::AccountHolderRequired => ErrorKind::Forbidden,
            Self::AlreadyCreated
            | Self::AlreadyMember
            | Self::LastAccountHolder
            | Self::ArchivalOff => ErrorKind::Conflict,
            Self::ArchivalDaysOutOfRange | Self::CutoffInFuture => ErrorKind::Invalid,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "workspace_not_found",
            Self::AlreadyCreated => "workspace_exists",
            Self::AccountHolderRequired => "account_holder_required",
            Self::AlreadyMember => "already_member",
            Self::MemberNotFound => "member_not_found",
            Self::LastAccountHolder => "last_account_holder",
            Self::ArchivalOff => "archival_off",
            Self::ArchivalDaysOutOfRange => "archival_days_out_of_range",
            Self::CutoffInFuture => "cutoff_in_future",
        }
    }
}

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
}

impl WorkspaceError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound | Self::MemberNotFound => ErrorKind::NotFound,
            Self::AccountHolderRequired => ErrorKind::Forbidden,
            Self::AlreadyCreated | Self::AlreadyMember | Self::LastAccountHolder => {
                ErrorKind::Conflict
            }
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
        }
    }
}

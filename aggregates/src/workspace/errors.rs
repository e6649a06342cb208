/// Refusals of a workspace command; each becomes one problem code at the edge.
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

//! Platform administration: creating the first admin (CLI), and support actions on accounts.

use secrecy::SecretString;
use warden_aggregates::account::AccountCommand;
use warden_aggregates::shared::{AccountId, Email, ErrorKind, Scope};

use crate::accounts::{AccountsService, Authenticated, RequestContext};
use crate::error::AppError;

impl AccountsService {
    /// The caller, if it is a platform administrator (and, for a token, has the `admin` scope).
    pub async fn require_admin(&self, who: &Authenticated) -> Result<(), AppError> {
        who.require(Scope::Admin)?;
        if self.account(who.account_id).await?.is_admin {
            Ok(())
        } else {
            Err(AppError::rejected(
                ErrorKind::Forbidden,
                "admin_required",
                "this needs a platform administrator",
            ))
        }
    }

    /// Creates the account if it does not exist (with `password`), then makes it an admin.
    /// Answers whether the account was created.
    pub async fn create_admin(
        &self,
        email: Email,
        password: SecretString,
    ) -> Result<(AccountId, bool), AppError> {
        let ctx = RequestContext {
            request_id: "cli:admin-create".into(),
            ..RequestContext::default()
        };
        let (account_id, created) = match self.account_id_for(&email).await? {
            Some(id) => (id, false),
            None => (self.register(email, password, None, &ctx).await?, true),
        };
        let committed = self
            .execute(
                account_id,
                || AccountCommand::GrantAdmin,
                &Default::default(),
            )
            .await?;
        self.settle(&committed, false).await?;
        Ok((account_id, created))
    }

    pub async fn unlock(
        &self,
        who: &Authenticated,
        target: AccountId,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        self.require_admin(who).await?;
        let metadata = self.metadata_for(who, ctx).await?;
        let by = who.account_id;
        let committed = self
            .execute(target, || AccountCommand::Unlock { by }, &metadata)
            .await?;
        self.settle(&committed, false).await
    }

    pub async fn reset_mfa(
        &self,
        who: &Authenticated,
        target: AccountId,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        self.require_admin(who).await?;
        let metadata = self.metadata_for(who, ctx).await?;
        let by = who.account_id;
        let committed = self
            .execute(target, || AccountCommand::ResetMfa { by }, &metadata)
            .await?;
        self.settle(&committed, true).await
    }
}

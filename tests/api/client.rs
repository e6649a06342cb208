//! A typed client of Warden's REST API for the tests: one method per endpoint, typed request
//! bodies, and one way of passing a credential (`app.api_as(token)`). Each method answers the
//! raw response, so a test asserts the status and problem `code` it expects.

use reqwest::{Method, Response};
use serde::Serialize;
use uuid::Uuid;

use crate::helpers::TestApp;

#[derive(Serialize)]
pub struct Register<'a> {
    pub email: &'a str,
    pub password: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<&'a str>,
}

#[derive(Serialize)]
pub struct LogIn<'a> {
    pub email: &'a str,
    pub password: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_name: Option<&'a str>,
}

#[derive(Serialize)]
pub struct SecondStep<'a> {
    pub challenge: &'a str,
    /// `totp`, `email` or `recovery_code`.
    pub method: &'a str,
    pub code: &'a str,
}

#[derive(Serialize)]
pub struct ChangePassword<'a> {
    pub current_password: &'a str,
    pub new_password: &'a str,
}

#[allow(dead_code)]
#[derive(Serialize)]
pub struct ConfirmReset<'a> {
    pub token: &'a str,
    pub new_password: &'a str,
}

#[derive(Serialize, Default)]
pub struct CreateToken<'a> {
    pub name: &'a str,
    pub password: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Serialize)]
pub struct SetPin<'a> {
    pub pin: &'a str,
    pub password: &'a str,
}

/// How a caller proves it is the account's owner once more.
#[allow(dead_code)]
#[derive(Serialize)]
#[serde(untagged)]
pub enum Reauthentication<'a> {
    Password { password: &'a str },
    Code { code: &'a str },
}

#[allow(dead_code)]
#[derive(Serialize)]
pub struct Purge<'a> {
    pub cutoff: String,
    pub counts: std::collections::BTreeMap<&'a str, u64>,
}

/// The API as one caller: anonymous, or the holder of a bearer token.
#[derive(Clone, Copy)]
pub struct Api<'a> {
    app: &'a TestApp,
    token: Option<&'a str>,
}

impl TestApp {
    /// The API as an anonymous caller.
    pub fn api(&self) -> Api<'_> {
        Api {
            app: self,
            token: None,
        }
    }

    /// The API as the holder of `token` (a session or an API token).
    pub fn api_as<'a>(&'a self, token: &'a str) -> Api<'a> {
        Api {
            app: self,
            token: Some(token),
        }
    }
}

// Every endpoint has its method, whether or not a test calls it yet.
#[allow(dead_code)]
impl<'a> Api<'a> {
    async fn send(self, method: Method, path: &str, body: Option<&impl Serialize>) -> Response {
        let mut request = self.app.client.request(method, self.app.url(path));
        if let Some(token) = self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }

    async fn get(self, path: &str) -> Response {
        self.send(Method::GET, path, None::<&()>).await
    }

    async fn post(self, path: &str, body: &impl Serialize) -> Response {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn post_empty(self, path: &str) -> Response {
        self.post(path, &serde_json::json!({})).await
    }

    async fn put(self, path: &str, body: &impl Serialize) -> Response {
        self.send(Method::PUT, path, Some(body)).await
    }

    async fn delete(self, path: &str, body: Option<&impl Serialize>) -> Response {
        self.send(Method::DELETE, path, body).await
    }

    // Accounts and password resets.
    pub async fn register(self, body: &Register<'_>) -> Response {
        self.post("/v1/accounts", body).await
    }

    pub async fn me(self) -> Response {
        self.get("/v1/me").await
    }

    pub async fn change_password(self, body: &ChangePassword<'_>) -> Response {
        self.put("/v1/me/password", body).await
    }

    pub async fn request_password_reset(self, email: &str) -> Response {
        let body = serde_json::json!({ "email": email });
        self.post("/v1/password-resets", &body).await
    }

    pub async fn confirm_password_reset(self, body: &ConfirmReset<'_>) -> Response {
        self.post("/v1/password-resets/confirm", body).await
    }

    pub async fn request_access(self, email: &str, reason: &str) -> Response {
        let body = serde_json::json!({ "email": email, "reason": reason });
        self.post("/v1/access-requests", &body).await
    }

    // Sessions.
    pub async fn log_in(self, body: &LogIn<'_>) -> Response {
        self.post("/v1/sessions", body).await
    }

    pub async fn second_step(self, body: &SecondStep<'_>) -> Response {
        self.post("/v1/sessions/mfa", body).await
    }

    pub async fn mail_login_code(self, challenge: &str) -> Response {
        let body = serde_json::json!({ "challenge": challenge });
        self.post("/v1/sessions/mfa/email-code", &body).await
    }

    pub async fn log_out(self) -> Response {
        self.delete("/v1/sessions/current", None::<&()>).await
    }

    pub async fn sessions(self) -> Response {
        self.get("/v1/me/sessions").await
    }

    pub async fn end_session(self, id: &str) -> Response {
        self.delete(&format!("/v1/me/sessions/{id}"), None::<&()>)
            .await
    }

    pub async fn revoke_all_sessions(self) -> Response {
        self.post_empty("/v1/me/sessions/revoke-all").await
    }

    // Second factors.
    pub async fn enroll_totp(self) -> Response {
        self.post_empty("/v1/me/mfa/totp").await
    }

    pub async fn confirm_totp(self, code: &str) -> Response {
        let body = serde_json::json!({ "code": code });
        self.post("/v1/me/mfa/totp/confirm", &body).await
    }

    pub async fn disable_totp(self, proof: &Reauthentication<'_>) -> Response {
        self.delete("/v1/me/mfa/totp", Some(proof)).await
    }

    pub async fn replace_recovery_codes(self, code: &str) -> Response {
        let body = serde_json::json!({ "code": code });
        self.post("/v1/me/mfa/recovery-codes", &body).await
    }

    pub async fn enroll_email(self) -> Response {
        self.post_empty("/v1/me/mfa/email").await
    }

    pub async fn confirm_email(self, code: &str) -> Response {
        let body = serde_json::json!({ "code": code });
        self.post("/v1/me/mfa/email/confirm", &body).await
    }

    pub async fn disable_email(self, password: &str) -> Response {
        let body = serde_json::json!({ "password": password });
        self.delete("/v1/me/mfa/email", Some(&body)).await
    }

    // The reporting PIN.
    pub async fn set_pin(self, body: &SetPin<'_>) -> Response {
        self.put("/v1/me/pin", body).await
    }

    pub async fn remove_pin(self, password: &str) -> Response {
        let body = serde_json::json!({ "password": password });
        self.delete("/v1/me/pin", Some(&body)).await
    }

    pub async fn verify_pin(self, pin: &str) -> Response {
        let body = serde_json::json!({ "pin": pin });
        self.post("/v1/me/pin/verify", &body).await
    }

    // API tokens and introspection.
    pub async fn create_token(self, body: &CreateToken<'_>) -> Response {
        self.post("/v1/me/tokens", body).await
    }

    pub async fn tokens(self) -> Response {
        self.get("/v1/me/tokens").await
    }

    pub async fn revoke_token(self, id: &str) -> Response {
        self.delete(&format!("/v1/me/tokens/{id}"), None::<&()>)
            .await
    }

    pub async fn introspect(self, token: &str) -> Response {
        let body = serde_json::json!({ "token": token });
        self.post("/v1/introspect", &body).await
    }

    // Workspaces and archival.
    pub async fn create_workspace(self, name: &str) -> Response {
        let body = serde_json::json!({ "name": name });
        self.post("/v1/workspaces", &body).await
    }

    pub async fn workspace(self, id: &str) -> Response {
        self.get(&format!("/v1/workspaces/{id}")).await
    }

    pub async fn add_member(self, workspace: &str, email: &str, role: &str) -> Response {
        let body = serde_json::json!({ "email": email, "role": role });
        self.post(&format!("/v1/workspaces/{workspace}/members"), &body)
            .await
    }

    pub async fn change_role(self, workspace: &str, account: &str, role: &str) -> Response {
        let body = serde_json::json!({ "role": role });
        let path = format!("/v1/workspaces/{workspace}/members/{account}");
        self.send(Method::PATCH, &path, Some(&body)).await
    }

    pub async fn remove_member(self, workspace: &str, account: &str) -> Response {
        let path = format!("/v1/workspaces/{workspace}/members/{account}");
        self.delete(&path, None::<&()>).await
    }

    pub async fn require_mfa(self, workspace: &str, required: bool) -> Response {
        let body = serde_json::json!({ "required": required });
        self.put(&format!("/v1/workspaces/{workspace}/mfa-policy"), &body)
            .await
    }

    pub async fn archival(self, workspace: &str) -> Response {
        self.get(&format!("/v1/workspaces/{workspace}/archival"))
            .await
    }

    pub async fn set_archival(self, workspace: &str, days: Option<u32>) -> Response {
        let body = serde_json::json!({ "days": days });
        self.put(&format!("/v1/workspaces/{workspace}/archival"), &body)
            .await
    }

    pub async fn record_purge(self, workspace: &str, purge: &Purge<'_>) -> Response {
        let path = format!("/v1/workspaces/{workspace}/archival/purges");
        self.post(&path, purge).await
    }

    pub async fn archival_schedule(self, query: &str) -> Response {
        self.get(&format!("/v1/archival/schedule{query}")).await
    }

    // Audit, history and the stream; `query` is the query string, `""` or `"?…"`.
    pub async fn audit(self, query: &str) -> Response {
        self.get(&format!("/v1/audit{query}")).await
    }

    pub async fn audit_export(self, query: &str) -> Response {
        self.get(&format!("/v1/audit/export{query}")).await
    }

    pub async fn workspace_audit(self, workspace: &str, query: &str) -> Response {
        self.get(&format!("/v1/workspaces/{workspace}/audit{query}"))
            .await
    }

    pub async fn history(self, account: &str) -> Response {
        self.get(&format!("/v1/accounts/{account}/history")).await
    }

    pub async fn state_at(self, account: &str, at: &str) -> Response {
        let at = at.replace('+', "%2B");
        self.get(&format!("/v1/accounts/{account}/state?at={at}"))
            .await
    }

    pub async fn verify_chain(self) -> Response {
        self.get("/v1/audit/verify").await
    }

    pub async fn public_key(self) -> Response {
        self.get("/v1/audit/public-key").await
    }

    pub async fn chain_export(self) -> Response {
        self.get("/v1/audit/chain").await
    }

    pub async fn events(self, after: &str, limit: i64) -> Response {
        self.get(&format!("/v1/events?after={after}&limit={limit}"))
            .await
    }

    // Administration.
    pub async fn unlock(self, account: &str) -> Response {
        self.post_empty(&format!("/v1/admin/accounts/{account}/unlock"))
            .await
    }

    pub async fn reset_mfa(self, account: &str) -> Response {
        self.post_empty(&format!("/v1/admin/accounts/{account}/mfa-reset"))
            .await
    }

    pub async fn erase(self, account: &str) -> Response {
        self.post_empty(&format!("/v1/admin/accounts/{account}/erase"))
            .await
    }

    pub async fn access_requests(self, query: &str) -> Response {
        self.get(&format!("/v1/admin/access-requests{query}")).await
    }

    pub async fn decide_access_request(self, id: Uuid, approve: bool) -> Response {
        let decision = if approve { "approve" } else { "deny" };
        self.post_empty(&format!("/v1/admin/access-requests/{id}/{decision}"))
            .await
    }
}

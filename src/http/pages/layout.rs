//! The frame of every page and the pieces its forms are made of: labelled fields with their
//! error beside them, the CSRF field, buttons, notices.

use maud::{html, Markup, DOCTYPE};

/// What a page's frame needs to know.
pub struct Frame<'a> {
    pub title: &'a str,
    pub csrf: &'a str,
    /// Signed in: the header offers the settings and signing out.
    pub signed_in: bool,
    /// The page needs the pages' script (WebAuthn, copying, downloading).
    pub script: bool,
}

pub fn page(frame: &Frame<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(frame.csrf);
                title { (frame.title) " · Warden" }
                link rel="stylesheet" href="/account/assets/warden.css";
                @if frame.script {
                    script src="/account/assets/account.js" defer {}
                }
            }
            body {
                header.top {
                    a.brand href="/account" { "Warden" }
                    @if frame.signed_in {
                        nav aria-label="Account" {
                            a href="/account/security" { "Security settings" }
                            a href="/account/workspaces" { "Workspaces" }
                            form method="post" action="/account/sign-out" {
                                (csrf_field(frame.csrf))
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" {
                    h1 { (frame.title) }
                    (body)
                }
            }
        }
    }
}

pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// One input with its label, its hint and its error; the error is tied to the input for
/// screen readers and the input is marked invalid.
pub struct Field<'a> {
    /// The form the field is in, when a page has more than one field of this name.
    pub form: Option<&'a str>,
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub autocomplete: &'a str,
    pub value: &'a str,
    pub hint: Option<&'a str>,
    pub error: Option<&'a str>,
    pub required: bool,
}

impl<'a> Field<'a> {
    pub fn new(name: &'a str, label: &'a str, kind: &'a str, autocomplete: &'a str) -> Self {
        Self {
            form: None,
            name,
            label,
            kind,
            autocomplete,
            value: "",
            hint: None,
            error: None,
            required: true,
        }
    }

    /// In `form`: its id is `f-{form}-{name}`, unique on a page of many forms.
    pub fn within(mut self, form: &'a str) -> Self {
        self.form = Some(form);
        self
    }

    pub fn value(mut self, value: &'a str) -> Self {
        self.value = value;
        self
    }

    pub fn hint(mut self, hint: &'a str) -> Self {
        self.hint = Some(hint);
        self
    }

    pub fn error(mut self, error: Option<&'a str>) -> Self {
        self.error = error;
        self
    }

    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    pub fn render(&self) -> Markup {
        let id = match self.form {
            Some(form) => format!("f-{form}-{}", self.name),
            None => format!("f-{}", self.name),
        };
        let hint_id = format!("{id}-hint");
        let error_id = format!("{id}-error");
        let described: Vec<&str> = [
            self.hint.map(|_| hint_id.as_str()),
            self.error.map(|_| error_id.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let described = described.join(" ");
        html! {
            div.field {
                label for=(id) { (self.label) }
                @if let Some(hint) = self.hint { p.hint id=(hint_id) { (hint) } }
                input id=(id) name=(self.name) type=(self.kind) autocomplete=(self.autocomplete)
                    value=(self.value) required[self.required]
                    aria-invalid=[self.error.map(|_| "true")]
                    aria-describedby=[(!described.is_empty()).then_some(described.as_str())];
                @if let Some(error) = self.error {
                    p.error id=(error_id) role="alert" { (error) }
                }
            }
        }
    }
}

/// A message about the whole form or page (not one field).
pub fn alert(error: Option<&str>) -> Markup {
    html! {
        @if let Some(error) = error {
            p.error.banner role="alert" { (error) }
        }
    }
}

/// What the last action did, shown at the top of the page it led to.
pub fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text {
            p.notice role="status" { (text) }
        }
    }
}

/// A one-button form posting to `action`.
pub fn button_form(action: &str, csrf: &str, label: &str, danger: bool) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(csrf))
            button.danger[danger] type="submit" { (label) }
        }
    }
}

/// The password rules, shown before a new password is chosen.
pub const PASSWORD_RULES: &str = "8 to 128 characters. Long phrases are easiest: a password \
     that is common or easy to guess is refused.";

/// A time as people read it, in UTC.
pub fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

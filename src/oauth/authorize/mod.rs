//! `GET /oauth/authorize` and the pages behind it: sign-in, sign-up and
//! consent (RFC 6749 §4.1, PKCE per RFC 7636). `request` checks what the
//! client asked for, `session` is the browser's side (cookies, CSRF, the
//! caller's address), `handlers` are the endpoints.

pub mod handlers;
pub mod request;
pub mod session;

pub use handlers::{
    SIGN_OUT_PATH, authorize, decide, sign_in, sign_out, sign_up, sign_up_page, verify_email,
    verify_email_page,
};

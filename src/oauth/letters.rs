//! The messages accounts send: askama templates under `templates/mail/`,
//! each a plain-text and an HTML part saying the same, with no images or
//! anything loaded from elsewhere.

use askama::Template;

use crate::{mail::Letter, users::EmailAddress, users::tokens::Purpose};

/// Where an email verification link points.
pub const VERIFY_EMAIL_PATH: &str = "/account/verify-email";

#[derive(Template)]
#[template(path = "mail/verify_email.txt")]
struct VerifyEmailText<'a> {
    to: &'a str,
    link: &'a str,
    hours: u64,
}

#[derive(Template)]
#[template(path = "mail/verify_email.html")]
struct VerifyEmailHtml<'a> {
    to: &'a str,
    link: &'a str,
    hours: u64,
}

/// Asks a new account's owner to confirm the address.
pub fn verify_email(to: &EmailAddress, link: &str) -> Result<Letter, askama::Error> {
    let hours = Purpose::VerifyEmail.lifetime().as_secs() / 3600;
    let to = to.as_str();
    Ok(Letter {
        to: to.to_owned(),
        subject: "Confirm your email address for Errand".to_owned(),
        text: VerifyEmailText { to, link, hours }.render()?,
        html: VerifyEmailHtml { to, link, hours }.render()?,
        links: vec![link.to_owned()],
        headers: Vec::new(),
    })
}

#[derive(Template)]
#[template(path = "mail/sign_up_attempt.txt")]
struct SignUpAttemptText<'a> {
    to: &'a str,
}

#[derive(Template)]
#[template(path = "mail/sign_up_attempt.html")]
struct SignUpAttemptHtml<'a> {
    to: &'a str,
}

/// Tells the owner of an existing account that someone tried to sign up
/// with their address (the sign-up page itself says nothing either way).
pub fn sign_up_attempt(to: &EmailAddress) -> Result<Letter, askama::Error> {
    let to = to.as_str();
    Ok(Letter {
        to: to.to_owned(),
        subject: "Someone tried to sign up for Errand with your address".to_owned(),
        text: SignUpAttemptText { to }.render()?,
        html: SignUpAttemptHtml { to }.render()?,
        links: Vec::new(),
        headers: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_say_the_same_in_both_parts_and_escape_the_address() {
        let to = EmailAddress::parse("alice@example.com").unwrap();
        let letter = verify_email(
            &to,
            "https://errand.example.com/account/verify-email?token=a&b",
        )
        .unwrap();
        assert!(
            letter
                .text
                .contains("https://errand.example.com/account/verify-email?token=a&b")
        );
        assert!(letter.html.contains("token=a&#38;b"), "{}", letter.html);
        assert!(letter.text.contains("24 hours") && letter.html.contains("24 hours"));
        assert_eq!(letter.links.len(), 1);
        let attempt = sign_up_attempt(&to).unwrap();
        assert!(attempt.text.contains("alice@example.com"));
        assert!(!attempt.html.contains("<img"));
    }
}

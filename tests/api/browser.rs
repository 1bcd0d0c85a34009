//! A real browser through the sign-in pages: headless Chromium, driven over
//! WebDriver, signs up, follows the verification link from the email,
//! signs in, consents and lands on the redirect with a code. Each page (and
//! the email, as a mail client would show its HTML) is saved as a
//! screenshot under `target/screenshots/` for a person to look at. Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them). Without them `cargo test` reports the test as ignored and says
//! what to install (`build.rs` decides); with `ERRAND_TEST_BROWSER=require`
//! (set by CI) it runs, and their absence fails it.

use std::{process::Stdio, time::Duration};

use errand::oauth::clients::GrantType;
use fantoccini::{ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    common::{Mail, TestApp},
    oauth_common::{ClientAuth, register_with, token_request, urlencode},
};

/// Where screenshots go: `target/screenshots/` (or under CARGO_TARGET_DIR).
pub(crate) fn screenshot_dir() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) async fn screenshot(
    browser: &fantoccini::Client,
    name: &str,
) -> Result<(), fantoccini::error::CmdError> {
    let png = browser.screenshot().await?;
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
    Ok(())
}

pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub(crate) struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) async fn start_chromedriver() -> (Driver, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Driver(
        std::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (driver, url);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

/// Headless Chromium under its WebDriver, with a fresh profile (the driver
/// and the profile folder live as long as the returned guards).
pub(crate) async fn chromium() -> (Driver, fantoccini::Client, tempfile::TempDir) {
    let (driver, webdriver) = start_chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=390,844",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }),
    );
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&webdriver)
        .await
        .expect("start a Chromium session");
    (driver, browser, profile)
}

/// Waits for an element of the page being loaded: clicks that navigate
/// return before the next page is there.
pub(crate) async fn element(
    browser: &fantoccini::Client,
    locator: Locator<'_>,
) -> Result<fantoccini::elements::Element, fantoccini::error::CmdError> {
    browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(locator)
        .await
}

/// Types the test account's email and password into the page's form and submits it.
async fn fill_credentials(browser: &fantoccini::Client) -> Result<(), fantoccini::error::CmdError> {
    element(browser, Locator::Id("email"))
        .await?
        .send_keys("browser@example.com")
        .await?;
    element(browser, Locator::Id("password"))
        .await?
        .send_keys("a browser password")
        .await?;
    element(browser, Locator::Css("button[type=submit]"))
        .await?
        .click()
        .await
}

#[tokio::test]
#[cfg_attr(
    not(browser_tests),
    ignore = "needs Chromium: apt-get install chromium chromium-driver"
)]
async fn a_real_browser_signs_up_signs_in_consents_and_gets_a_code() {
    for program in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(program).exists(),
            "{program} is missing: apt-get install chromium chromium-driver"
        );
    }
    let app = TestApp::spawn().await;
    let callback = app.url("/browser-callback");
    let client = register_with(
        &app,
        "Browser GPT",
        &[GrantType::AuthorizationCode],
        false,
        &[&callback],
        "tasks:read tasks:write",
    )
    .await;
    let (_driver, browser, _profile) = chromium().await;

    let authorize = format!(
        "{}?response_type=code&client_id={}&redirect_uri={}&scope={}&state=browser-state",
        app.url("/oauth/authorize"),
        client.id,
        urlencode(&callback),
        urlencode("tasks:read tasks:write"),
    );
    let outcome = async {
        // Sign up.
        browser.goto(&authorize).await?;
        screenshot(&browser, "sign-in").await?;
        element(&browser, Locator::LinkText("Create an account"))
            .await?
            .click()
            .await?;
        // The sign-in page has the same fields: wait for the sign-up page.
        element(
            &browser,
            Locator::XPath("//h1[. = 'Create your Errand account']"),
        )
        .await?;
        fill_credentials(&browser).await?;
        element(&browser, Locator::XPath("//h1[. = 'Check your inbox']")).await?;
        screenshot(&browser, "sign-up-check-inbox").await?;

        // The verification email, as a mail client shows it, and its link.
        let mailbox = app.await_mail(1).await;
        let mail = Mail::parse(mailbox.first().expect("a verification email"));
        assert_eq!(mail.to, "browser@example.com");
        let html_file = screenshot_dir().join("verify-email.html");
        std::fs::write(&html_file, &mail.html).unwrap();
        browser
            .goto(&format!("file://{}", html_file.display()))
            .await?;
        screenshot(&browser, "mail-verify-email").await?;
        let link = mail
            .link(&app.url("/account/verify-email"))
            .expect("a verification link");
        browser.goto(&link).await?;
        screenshot(&browser, "verify-email").await?;
        element(&browser, Locator::Css("button[type=submit]"))
            .await?
            .click()
            .await?;
        element(&browser, Locator::XPath("//h1[. = 'Address confirmed']")).await?;
        screenshot(&browser, "verify-email-done").await?;

        // Signing in leads to consent.
        browser.goto(&authorize).await?;
        fill_credentials(&browser).await?;
        let heading = element(&browser, Locator::XPath("//h1[starts-with(., 'Allow ')]"))
            .await?
            .text()
            .await?;
        assert_eq!(heading, "Allow Browser GPT to use your Errand account?");
        screenshot(&browser, "consent").await?;

        // A new browser profile signs in instead (cookies cleared).
        browser.delete_all_cookies().await?;
        browser.goto(&authorize).await?;
        fill_credentials(&browser).await?;
        element(&browser, Locator::Css("button[value=allow]"))
            .await?
            .click()
            .await?;
        // The redirect target is a path Errand does not serve; only the URL matters.
        let mut landed = browser.current_url().await?;
        for _ in 0..50 {
            if landed.as_str().starts_with(&callback) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            landed = browser.current_url().await?;
        }
        Ok::<_, fantoccini::error::CmdError>(landed)
    }
    .await;
    let _ = browser.close().await;
    let landed = outcome.expect("browser steps");
    assert!(landed.as_str().starts_with(&callback), "landed on {landed}");
    let params: std::collections::HashMap<String, String> =
        landed.query_pairs().into_owned().collect();
    assert_eq!(params["state"], "browser-state");

    // The code it landed with is good for tokens.
    let (status, tokens): (StatusCode, Value) = token_request(
        &app,
        "/oauth/token",
        &client,
        ClientAuth::Basic,
        &[
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("redirect_uri", &callback),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
}

//! Tells the integration tests what this machine can run, so that a test
//! that cannot run here is reported as ignored, with what it needs, instead
//! of passing without having run.

use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    // A directory's modification time changes when a file is added to it,
    // so installing Chromium re-runs this script (watching the missing file
    // itself would re-run it, and rebuild the crate, on every build).
    println!("cargo::rerun-if-changed=/usr/bin");
    println!("cargo::rerun-if-env-changed=ERRAND_TEST_BROWSER");
    println!("cargo::rerun-if-env-changed=ERRAND_TEST_DATABASE_URL");
    println!("cargo::rerun-if-env-changed=ERRAND_TEST_MCP_PYTHON");
    println!("cargo::rerun-if-env-changed=ERRAND_TEST_MCP_APPS");
    println!("cargo::rustc-check-cfg=cfg(mcp_sdk_tests)");
    println!("cargo::rustc-check-cfg=cfg(browser_tests)");
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    println!("cargo::rustc-check-cfg=cfg(mcp_apps_tests)");

    let browser_installed =
        Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists();
    // Required (as in CI): the test runs, and fails if Chromium is missing.
    let browser_required = std::env::var("ERRAND_TEST_BROWSER").is_ok_and(|v| v == "require");
    if browser_installed || browser_required {
        println!("cargo::rustc-cfg=browser_tests");
    }
    // A Python with the official MCP SDK (`pip install mcp==2.3.0`), for
    // the tests that drive Errand with a client it did not write.
    if std::env::var("ERRAND_TEST_MCP_PYTHON").is_ok_and(|p| !p.is_empty()) {
        println!("cargo::rustc-cfg=mcp_sdk_tests");
    }
    // A folder where `@modelcontextprotocol/ext-apps` (the official MCP
    // Apps host bridge) is installed, for the inline-view browser test.
    if std::env::var("ERRAND_TEST_MCP_APPS").is_ok_and(|p| !p.is_empty()) {
        println!("cargo::rustc-cfg=mcp_apps_tests");
    }
    if std::env::var("ERRAND_TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=postgres_tests");
    }
}

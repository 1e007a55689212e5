//! Headless Chromium driven over WebDriver: [`Chromedriver`] (the driver process, killed
//! with its browsers on drop, a failing test included) and [`Browser`] (a session, with the
//! waits and reads the dashboard test needs).

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

/// How long a wait for the page lasts: the page polls every 2 s.
pub(super) const PAGE_WAIT: Duration = Duration::from_secs(30);

const INSTALL: &str =
    "run scripts/ensure-chromium.sh (installs Debian's chromium and chromium-driver)";

/// The first of `names` on `PATH`.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A running `chromedriver --port=<free port>`, in a process group of its own: dropping it
/// kills the group (the driver and every browser it started).
#[derive(Debug)]
pub(super) struct Chromedriver {
    child: Child,
    url: String,
    chromium: PathBuf,
}

impl Chromedriver {
    /// Start chromedriver and wait until it answers `/status`.
    ///
    /// # Panics
    /// When chromium or chromedriver is not installed (the message says how to install them),
    /// or the driver does not come up within 20 s.
    pub(super) async fn start() -> Chromedriver {
        let chromium = on_path(&["chromium", "chromium-browser", "google-chrome"])
            .unwrap_or_else(|| panic!("chromium is not installed: {INSTALL}"));
        let driver = on_path(&["chromedriver"])
            .unwrap_or_else(|| panic!("chromedriver is not installed: {INSTALL}"));
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("starting chromedriver");
        let this = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            chromium,
        };
        let start = Instant::now();
        let status = format!("{}/status", this.url);
        while reqwest::get(&status)
            .await
            .map_or(true, |r| !r.status().is_success())
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        this
    }

    /// A new headless Chromium session.
    pub(super) async fn browser(&self) -> Browser {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--disable-crash-reporter",
                         "--disable-breakpad", "--window-size=1400,1100"],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!("an object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("opening a Chromium session");
        Browser { client }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // the whole group: chromedriver and the browsers it started
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session on the dashboard.
#[derive(Debug)]
pub(super) struct Browser {
    client: Client,
}

impl Browser {
    /// Open `url`.
    pub(super) async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("loading the page");
    }

    /// The value of the JS expression `expression` (run as `return (expression)`), polled
    /// until `ready` accepts it.
    ///
    /// # Panics
    /// After [`PAGE_WAIT`]; the message names `what` and the last value.
    pub(super) async fn wait_for(
        &self,
        what: &str,
        expression: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let value = self.eval(expression).await;
            if ready(&value) {
                return value;
            }
            assert!(
                start.elapsed() < PAGE_WAIT,
                "the page did not show {what} within {PAGE_WAIT:?}: last {value}; error box: {}",
                self.eval("document.getElementById('error').textContent")
                    .await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The value of the JS expression `expression`.
    pub(super) async fn eval(&self, expression: &str) -> Value {
        self.client
            .execute(&format!("return ({expression});"), vec![])
            .await
            .expect("running a script in the page")
    }

    /// Whether an element matches `css` and is displayed.
    pub(super) async fn shown(&self, css: &str) -> bool {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Type `text` into the input `css`.
    pub(super) async fn type_into(&self, css: &str, text: &str) {
        let input = self.client.find(Locator::Css(css)).await.expect(css);
        input.clear().await.expect("clearing the input");
        input.send_keys(text).await.expect("typing");
    }

    /// Click the element `css` (a real WebDriver click: it must be displayed and enabled).
    pub(super) async fn click(&self, css: &str) {
        let element = self
            .client
            .wait()
            .at_most(PAGE_WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// Save a PNG screenshot of the page at `path` (creating its directory).
    pub(super) async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::create_dir_all(path.parent().expect("a directory")).expect("creating it");
        std::fs::write(path, png).expect("writing the screenshot");
    }

    /// End the session (the browser exits).
    pub(super) async fn close(self) {
        let _ = self.client.close().await;
    }
}

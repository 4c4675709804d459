//! A small W3C WebDriver client over the `reqwest` the tests already use: start chromedriver,
//! open a headless Chromium session, navigate, click, read the page, take screenshots and read
//! the browser's console log. The handful of commands the end-to-end test needs do not justify
//! a WebDriver crate and its HTTP stack in the build.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// W3C WebDriver's element reference key (WebDriver §12.1).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Debian puts the browser and its driver, unless `CHROME_BIN` / `CHROMEDRIVER` say
/// otherwise.
fn tool(var: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    path.is_file().then_some(path)
}

/// chromedriver running on a free port; killed when dropped.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why the browser test cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    if tool("CHROME_BIN", "/usr/bin/chromium").is_none() {
        return Some(
            "chromium is not installed (apt-get install chromium chromium-driver)".to_owned(),
        );
    }
    if tool("CHROMEDRIVER", "/usr/bin/chromedriver").is_none() {
        return Some("chromedriver is not installed (apt-get install chromium-driver)".to_owned());
    }
    None
}

impl Driver {
    /// Starts chromedriver and waits (polling every 50 ms, at most 10 s) until it is ready.
    pub async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = tool("CHROMEDRIVER", "/usr/bin/chromedriver").expect("chromedriver");
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        for _ in 0..200 {
            let ready = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success());
            if let Some(response) = ready {
                let status: Value = response.json().await.unwrap_or_default();
                if status["value"]["ready"] == true {
                    return driver;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("chromedriver did not become ready within 10 s");
    }

    /// A new headless Chromium session that records every console message.
    pub async fn session(&self) -> Session {
        let chromium = tool("CHROME_BIN", "/usr/bin/chromium").expect("chromium");
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--window-size=1000,1000",
                            "--no-first-run",
                            "--disable-extensions",
                        ],
                    },
                    "goog:loggingPrefs": { "browser": "ALL" },
                }
            }
        });
        let answer = self.call("POST", "/session", Some(capabilities)).await;
        let id = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a WebDriver session: {answer}"))
            .to_owned();
        Session {
            base: format!("{}/session/{id}", self.base),
            http: self.http.clone(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        send(&self.http, method, &format!("{}{path}", self.base), body).await
    }
}

async fn send(http: &reqwest::Client, method: &str, url: &str, body: Option<Value>) -> Value {
    try_send(http, method, url, body)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A WebDriver command; `Err` describes a refused one (e.g. an element gone with its page).
async fn try_send(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("chromedriver answers");
    let status = response.status();
    let value: Value = response.json().await.expect("a JSON answer");
    if !status.is_success() {
        return Err(format!("WebDriver {url} failed ({status}): {value}"));
    }
    // W3C answers wrap results in `value`.
    Ok(value.get("value").cloned().unwrap_or(value))
}

/// One browser window.
pub struct Session {
    base: String,
    http: reqwest::Client,
}

impl Session {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        send(&self.http, method, &format!("{}{path}", self.base), body).await
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url }))).await;
    }

    /// The address bar.
    pub async fn url(&self) -> String {
        self.call("GET", "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The visible text of the page; empty while a navigation replaces it (callers poll).
    pub async fn text(&self) -> String {
        let found = try_send(
            &self.http,
            "POST",
            &format!("{}/element", self.base),
            Some(json!({ "using": "css selector", "value": "body" })),
        )
        .await;
        let Some(body) = found
            .ok()
            .and_then(|v| v[ELEMENT].as_str().map(str::to_owned))
        else {
            return String::new();
        };
        try_send(
            &self.http,
            "GET",
            &format!("{}/element/{body}/text", self.base),
            None,
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
    }

    /// The first element matching a CSS selector; panics (with the page) when there is none.
    pub async fn find(&self, css: &str) -> String {
        let answer = send(
            &self.http,
            "POST",
            &format!("{}/element", self.base),
            Some(json!({ "using": "css selector", "value": css })),
        )
        .await;
        answer[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css:?}: {answer}"))
            .to_owned()
    }

    /// Clicks the first element matching a CSS selector (a link or a form button) and waits
    /// for the navigation it starts.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.call(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Saves a PNG screenshot of the window as `dir/name.png`.
    pub async fn screenshot(&self, dir: &Path, name: &str) {
        let data = self.call("GET", "/screenshot", None).await;
        let png = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            data.as_str().unwrap_or_default(),
        )
        .expect("a base64 PNG");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write the screenshot");
    }

    /// Console messages since the last call: (level, message). Chromium reports CSP
    /// violations and failed loads here as `SEVERE`.
    pub async fn console(&self) -> Vec<(String, String)> {
        let entries = self
            .call("POST", "/se/log", Some(json!({ "type": "browser" })))
            .await;
        entries
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        (
                            e["level"].as_str().unwrap_or_default().to_owned(),
                            e["message"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ends the session (closes the browser).
    pub async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await.map(|_| ());
    }
}

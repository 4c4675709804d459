//! A minimal browser for tests: follows one redirect at a time and keeps cookies per host.

use std::collections::HashMap;

/// Cookies by host:port, sent back on later requests to the same host.
#[derive(Default)]
pub struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, HashMap<String, String>>,
}

/// One response as a browser saw it.
pub struct Page {
    /// HTTP status.
    pub status: u16,
    /// `Location`, when a redirect.
    pub location: Option<String>,
    /// Body text.
    pub body: String,
}

fn host_of(url: &str) -> String {
    let parsed = url::Url::parse(url).expect("absolute URL");
    format!(
        "{}:{}",
        parsed.host_str().unwrap_or_default(),
        parsed.port_or_known_default().unwrap_or(0)
    )
}

impl Browser {
    /// A browser with an empty cookie jar that never follows redirects by itself.
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
        }
    }

    /// A browser that sends this `User-Agent` header.
    pub fn with_user_agent(user_agent: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(user_agent)
                .build()
                .expect("client"),
            cookies: HashMap::new(),
        }
    }

    /// GETs `url`, storing any cookies it sets (a `Max-Age=0` deletes).
    pub async fn get(&mut self, url: &str) -> Page {
        self.get_via(url, None).await
    }

    /// GETs `url` as if a load balancer at its host sent it to the server at `address`
    /// (`http://127.0.0.1:PORT`): cookies are those of `url`'s host, in both directions.
    pub async fn get_through(&mut self, url: &str, address: &str) -> Page {
        self.get_via(url, Some(address)).await
    }

    /// POSTs a form to `url` as a browser submits one: with its cookies, storing any it sets.
    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let request = self.http.post(url).form(form);
        self.send(url, request).await
    }

    /// POSTs a form to `url` as [`Browser::post_form`], routed to the server at `address` as
    /// [`Browser::get_through`] routes a GET.
    pub async fn post_form_through(
        &mut self,
        url: &str,
        address: &str,
        form: &[(&str, &str)],
    ) -> Page {
        let request = self.http.post(routed(url, Some(address))).form(form);
        self.send(url, request).await
    }

    async fn get_via(&mut self, url: &str, address: Option<&str>) -> Page {
        let request = self.http.get(routed(url, address));
        self.send(url, request).await
    }

    /// Sends `request` (to `url`'s host as far as cookies go) and reads the page.
    async fn send(&mut self, url: &str, mut request: reqwest::RequestBuilder) -> Page {
        let host = host_of(url);
        if let Some(jar) = self.cookies.get(&host) {
            let header = jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            if !header.is_empty() {
                request = request.header("cookie", header);
            }
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().expect("ascii location").to_owned());
        for set in response.headers().get_all("set-cookie") {
            let set = set.to_str().expect("ascii cookie");
            let first = set.split(';').next().unwrap_or_default();
            if let Some((name, value)) = first.split_once('=') {
                let jar = self.cookies.entry(host.clone()).or_default();
                if set.to_ascii_lowercase().contains("max-age=0") || value.is_empty() {
                    jar.remove(name.trim());
                } else {
                    jar.insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            location,
            body,
        }
    }

    /// A cookie's value for `url`'s host.
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        self.cookies
            .get(&host_of(url))
            .and_then(|jar| jar.get(name).cloned())
    }

    /// Keeps a cookie for `url`'s host, as if it had been set earlier (a browser that signed in
    /// before an upgrade).
    pub fn set_cookie(&mut self, url: &str, name: &str, value: &str) {
        self.cookies
            .entry(host_of(url))
            .or_default()
            .insert(name.to_owned(), value.to_owned());
    }

    /// Forgets one cookie (e.g. to simulate another browser finishing a login).
    pub fn forget(&mut self, url: &str, name: &str) {
        if let Some(jar) = self.cookies.get_mut(&host_of(url)) {
            jar.remove(name);
        }
    }
}

/// `url` with the port of `address` (a load balancer at `url`'s host sending it there).
fn routed(url: &str, address: Option<&str>) -> String {
    match address {
        Some(address) => {
            let mut routed = url::Url::parse(url).expect("absolute URL");
            let server = url::Url::parse(address).expect("absolute address");
            routed.set_port(server.port()).expect("a port");
            routed.to_string()
        }
        None => url.to_owned(),
    }
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .expect("absolute URL")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

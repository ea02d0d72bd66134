//! The page shell every page shares, the login page, the stylesheet and the refresh script.

use axum::{http::header, response::IntoResponse};
use maud::{DOCTYPE, Markup, html};

/// A whole page. `refresh` is how often the script reloads it, in seconds; without the script the page
/// is the same, only still.
pub fn page(title: &str, refresh: Option<u32>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · autoscaler" }
                link rel="stylesheet" href="/ui/style.css";
            }
            body data-refresh=[refresh] {
                header {
                    a.brand href="/ui" { "autoscaler" }
                    nav { a href="/ui" { "Clusters" } }
                    form.logout method="post" action="/ui/logout" {
                        button type="submit" { "Log out" }
                    }
                }
                main { (body) }
                @if refresh.is_some() {
                    script src="/ui/refresh.js" defer {}
                }
            }
        }
    }
}

/// The login form; `problem` says why the last attempt failed.
pub fn login(next: &str, problem: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Log in · autoscaler" }
                link rel="stylesheet" href="/ui/style.css";
            }
            body {
                main.login {
                    h1 { "autoscaler" }
                    p { "Log in with one of the service's API tokens (AUTOSCALER_API_TOKENS or the token file); you see your team's clusters." }
                    @if let Some(problem) = problem {
                        p.error role="alert" { (problem) }
                    }
                    form method="post" action="/ui/login" {
                        input type="hidden" name="next" value=(next);
                        label for="token" { "API token" }
                        input #token type="password" name="token" autocomplete="current-password" required autofocus;
                        button type="submit" { "Log in" }
                    }
                }
            }
        }
    }
}

const STYLESHEET: &str = r#"
:root { --fg: #1d2330; --muted: #5c6577; --line: #d9dde5; --bg: #f6f7f9; --ok: #1a7f37; --bad: #c62828;
        --warn: #9a6700; --busy: #0b63c5; font-family: system-ui, sans-serif; color: var(--fg); }
body { margin: 0; background: var(--bg); }
header { display: flex; align-items: center; gap: 1.5rem; padding: .6rem 1.5rem; background: #1d2330; }
header a, header button { color: #fff; text-decoration: none; }
header .brand { font-weight: 700; }
header form.logout { margin-left: auto; }
header button { background: none; border: 1px solid #fff6; border-radius: 4px; padding: .2rem .7rem; cursor: pointer; }
main { padding: 1rem 1.5rem 3rem; }
main.login { max-width: 26rem; margin: 4rem auto; background: #fff; border: 1px solid var(--line); border-radius: 6px; }
main.login form { display: grid; gap: .5rem; }
main.login input, main.login button { font: inherit; padding: .4rem; }
h1 { font-size: 1.4rem; margin: .4rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 .6rem; }
table { border-collapse: collapse; background: #fff; border: 1px solid var(--line); width: 100%; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { font-size: .8rem; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; background: #fff;
           border: 1px solid var(--line); padding: .8rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.status { display: inline-block; padding: 0 .45rem; border-radius: 9px; font-size: .85rem; background: #e8eaef; }
.status.applied, .status.skipped, .status.recommended { background: #dafbe1; color: var(--ok); }
.status.failed, .status.rejected { background: #ffebe9; color: var(--bad); }
.status.vetoed, .status.superseded { background: #fff8c5; color: var(--warn); }
.status.pending, .status.running, .status.committed, .status.pr_open, .status.merged, .status.syncing,
.status.synced { background: #ddf4ff; color: var(--busy); }
.paused { color: var(--warn); font-weight: 600; }
.bad { color: var(--bad); }
.muted { color: var(--muted); }
.error { color: var(--bad); }
.charts svg { display: block; background: #fff; border: 1px solid var(--line); margin-bottom: .8rem; max-width: 100%; height: auto; }
.windows a { margin-right: .6rem; }
.windows a.current { font-weight: 700; text-decoration: none; color: var(--fg); }
pre { background: #fff; border: 1px solid var(--line); padding: .6rem; overflow-x: auto; }
.pager { margin-top: .8rem; }
"#;

pub async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
}

/// Reloads the page every `data-refresh` seconds while it is visible. The pages work without it.
const REFRESH_SCRIPT: &str = "(function () {\n  var seconds = Number(document.body.dataset.refresh || 0);\n  if (!seconds) return;\n  setInterval(function () { if (!document.hidden) location.reload(); }, seconds * 1000);\n})();\n";

pub async fn refresh_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        REFRESH_SCRIPT,
    )
}

//! A Postgres database per test, created on the local server and dropped when the test ends.

/// The server for Postgres admin work; each test gets its own database on it.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of its own, dropped when the test ends.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin: String,
}

impl TestDatabase {
    pub fn new() -> Self {
        Self::on(&admin_url())
    }

    /// A database of its own on the server that `admin` (a URL of an existing database there) names.
    pub fn on(admin: &str) -> Self {
        let name = format!("autoscaler_test_{}", uuid::Uuid::new_v4().simple());
        let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
        let url = format!("{base}/{name}");
        Self {
            name,
            url,
            admin: admin.to_owned(),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = self.admin.clone();
        // Drop runs outside async; a short-lived runtime on its own thread does the async cleanup.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "drop database if exists {name} with (force)"
                    )))
                    .execute(&pool)
                    .await;
                }
            });
        })
        .join();
    }
}

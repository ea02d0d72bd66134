//! All SQL lives here. Handlers and loops call these functions; nothing else builds queries.

mod audit;
mod capacity;
mod clusters;
mod decisions;
mod overview;
mod predictions;
mod progress;
mod reconcile;
mod retention;
mod samples;
mod tasks;
mod webhooks;

use std::time::Duration;

use sqlx::{
    PgPool, Postgres,
    migrate::{MigrateDatabase, Migrator},
    postgres::PgPoolOptions,
};

pub use audit::{Actor, AuditAction, AuditEntry, redact};
pub use clusters::{ClusterRecord, ClusterStatusCounts, DecisionFacts};
pub use decisions::{DecisionRecord, DecisionStatus, NewDecision};
pub use overview::{ClusterOverview, DecisionCount, DecisionSummary};
pub use predictions::PREDICTION_CHECK_STEP;
pub use progress::{DecisionLease, HumanChange, PreviousDecision, Transition};
pub use reconcile::{Leadership, StuckDecision};
pub use retention::{Pruned, RetentionCutoffs};
pub use samples::Sample;
pub use tasks::scaling_queue_name;
pub use webhooks::{
    AfterStep, Delivery, DeliveryEffect, DeliveryOutcome, DeliverySource, EngineInstance, Merge,
};

/// The autoscaler's own schema, from `migrations/`.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    Conflict,
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A compare-and-set of a decision's status found another status: someone else moved it first.
    #[error("decision {id} is {found}, not {expected}: another actor moved it first")]
    LostRace {
        id: i64,
        expected: crate::lifecycle::DecisionStatus,
        found: crate::lifecycle::DecisionStatus,
    },
    #[error(transparent)]
    IllegalTransition(#[from] crate::lifecycle::IllegalTransition),
    #[error("job queue setup failed: {0}")]
    Queue(#[from] apalis_postgres::Error),
}

/// A handle on the database, cheap to clone.
#[derive(Debug, Clone)]
pub struct Storage {
    pool: PgPool,
}

impl Storage {
    /// Connects, creating the database first if it does not exist.
    pub async fn connect(database_url: &str) -> Result<Self, StorageError> {
        if !Postgres::database_exists(database_url).await? {
            match Postgres::create_database(database_url).await {
                Ok(()) => tracing::info!("created the database"),
                // Another replica created it between our check and our create.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
                Err(e) => return Err(e.into()),
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect(database_url)
            .await?;
        Ok(Self { pool })
    }

    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies our migrations and the job queue's. Each keeps its own ledger
    /// (`public._sqlx_migrations`, `apalis._sqlx_migrations`), so neither sees the other's versions.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        MIGRATOR.run(&self.pool).await?;
        apalis_postgres::PostgresStorage::<()>::setup(&self.pool).await?;
        Ok(())
    }

    /// For readiness: can we reach the database right now?
    pub async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Jobs in the queue by status, for the service's metrics.
    pub async fn queue_depth(&self) -> Result<Vec<(String, i64)>, StorageError> {
        let rows = sqlx::query_as(
            "select status, count(*) from apalis.jobs where done_at is null group by status",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}

/// Maps a unique violation to `Conflict`, leaving other errors alone.
fn conflict_on_unique(e: sqlx::Error) -> StorageError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StorageError::Conflict,
        _ => StorageError::Database(e),
    }
}

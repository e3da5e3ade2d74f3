//! Lakes on S3-compatible storage: credentials and endpoint come from the standard `AWS_*`
//! environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`). Commits rely on the store's conditional put
//! (If-None-Match), which AWS S3, MinIO and R2 support, so no external lock is needed.

use std::sync::{Arc, Once};

use anyhow::{Context as _, Result};
use deltalake::DeltaResult;
use deltalake::logstore::ObjectStoreRef;
use deltalake::logstore::{
    LogStore, LogStoreFactory, StorageConfig, default_logstore, logstore_factories,
};
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use url::Url;

/// Builds the S3 store for a lake root `s3://bucket/prefix/`.
pub fn store(root: &Url) -> Result<Arc<dyn ObjectStore>> {
    register_logstore();
    // Transient errors (timeouts, 5xx, throttling) are retried with exponential backoff
    // by object_store itself; a request that still fails after this fails the step, and
    // the previous table versions stay as they were.
    let retry = object_store::RetryConfig {
        max_retries: 6,
        retry_timeout: std::time::Duration::from_secs(180),
        backoff: object_store::BackoffConfig {
            init_backoff: std::time::Duration::from_millis(200),
            max_backoff: std::time::Duration::from_secs(20),
            base: 2.0,
        },
    };
    let store = AmazonS3Builder::from_env()
        .with_url(root.as_str())
        .with_retry(retry)
        .build()
        .with_context(|| format!("cannot configure S3 for {root}; set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION (and AWS_ENDPOINT for S3-compatible servers)"))?;
    Ok(Arc::new(store))
}

#[derive(Debug, Default)]
struct ConditionalPutLogStore;

impl LogStoreFactory for ConditionalPutLogStore {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

fn register_logstore() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        logstore_factories().insert(
            Url::parse("s3://").expect("static URL"),
            Arc::new(ConditionalPutLogStore),
        );
    });
}

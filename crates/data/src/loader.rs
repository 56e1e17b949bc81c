//! [`BatchLoader`]: seeded shuffling, batching, normalisation and augmentation of a
//! [`Dataset`], with worker threads that prepare the next batches while the caller computes.

use crate::augment::AugmentScratch;
use crate::normalize::ChannelTables;
use crate::{Augment, DataError, Dataset, Normalize};
use ganglion_tensor::{Rng, Tensor};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

/// Batches the workers prepare ahead of the caller, unless a configuration says otherwise.
pub const DEFAULT_PREFETCH: usize = 2;

/// How a [`BatchLoader`] walks its data set.
#[derive(Debug, Clone, PartialEq)]
pub struct LoaderConfig {
    /// Samples per batch (the last batch of an epoch may be smaller unless `drop_last`).
    pub batch_size: usize,
    /// Whether each epoch visits the samples in a seeded random order (else in index order).
    pub shuffle: bool,
    /// Whether to skip a last batch smaller than `batch_size`.
    pub drop_last: bool,
    /// Seed of the shuffles and augmentations.
    pub seed: u64,
    /// Augmentation applied to every sample (none for evaluation).
    pub augment: Augment,
    /// Batches the workers prepare ahead (at least one per worker); 0 prepares each batch on
    /// the caller's thread when it is asked for. The batches are the same either way.
    pub prefetch: usize,
    /// Worker threads building batches when `prefetch > 0`: worker `k` of `n` builds batches
    /// `k, k + n, ...` and the caller takes them in order. The batches are the same for any
    /// count.
    pub workers: usize,
}

impl LoaderConfig {
    /// Training: shuffled with `seed`, every batch kept, no augmentation, prefetching.
    pub fn train(batch_size: usize, seed: u64) -> Self {
        Self {
            batch_size,
            shuffle: true,
            drop_last: false,
            seed,
            augment: Augment::none(),
            prefetch: DEFAULT_PREFETCH,
            workers: 1,
        }
    }

    /// Evaluation: index order, no augmentation, every sample once, prefetching.
    pub fn eval(batch_size: usize) -> Self {
        Self {
            shuffle: false,
            ..Self::train(batch_size, 0)
        }
    }

    /// The same configuration with `drop_last` set.
    pub fn with_drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// The same configuration with an augmentation.
    pub fn with_augment(mut self, augment: Augment) -> Self {
        self.augment = augment;
        self
    }

    /// The same configuration with another prefetch depth (0: no worker thread).
    pub fn with_prefetch(mut self, prefetch: usize) -> Self {
        self.prefetch = prefetch;
        self
    }

    /// The same configuration with `workers` worker threads.
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }
}

/// One batch: normalised images and their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `[b, c, h, w]` normalised (and, in training, augmented) images.
    pub images: Tensor,
    /// The label of each image.
    pub labels: Vec<usize>,
    /// The data-set index of each image.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch holds no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// What every epoch of a loader shares, read-only, with its worker thread.
struct Shared {
    dataset: Arc<Dataset>,
    tables: ChannelTables,
    config: LoaderConfig,
    out_shape: [usize; 3],
}

/// Turns a [`Dataset`] into batches of normalised `f32` images, epoch by epoch.
///
/// Epoch `e` visits the samples in the order [`BatchLoader::permutation`]`(e)`: the
/// Fisher–Yates shuffle of `0..len` by `Rng::seed_from(seed).fork(e)` (or index order without
/// shuffling). Sample `i` is augmented from [`Augment::sample_rng`]`(seed, e, i)`. The batches
/// therefore depend only on the data, the configuration and `e`; never on timing, on the
/// prefetch depth, on the number of workers or on which thread built them.
///
/// Memory stays bounded: each worker's queue holds at most `prefetch / workers` (rounded up,
/// at least one) finished batches and blocks it until the caller takes them.
///
/// # Examples
/// ```
/// use ganglion_data::{BatchLoader, Dataset, LoaderConfig, Normalize};
/// let data = Dataset::new(vec![0; 5 * 4], vec![0, 1, 0, 1, 1], [1, 2, 2], 2)?;
/// let loader = BatchLoader::new(data, &Normalize::mnist(), LoaderConfig::train(2, 7))?;
/// let sizes: Vec<usize> = loader.epoch(0).map(|b| b.len()).collect();
/// assert_eq!(sizes, [2, 2, 1]);
/// # Ok::<(), ganglion_data::DataError>(())
/// ```
#[derive(Clone)]
pub struct BatchLoader {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BatchLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchLoader")
            .field("dataset", &self.shared.dataset)
            .field("config", &self.shared.config)
            .field("image_shape", &self.shared.out_shape)
            .finish_non_exhaustive()
    }
}

impl BatchLoader {
    /// A loader over `dataset` normalised by `normalize`.
    ///
    /// # Errors
    /// [`DataError::Invalid`] when `batch_size` or `workers` is 0, the normalisation is invalid
    /// or has another channel count than the data set, or the augmentation does not fit.
    pub fn new(
        dataset: impl Into<Arc<Dataset>>,
        normalize: &Normalize,
        config: LoaderConfig,
    ) -> Result<Self, DataError> {
        let dataset = dataset.into();
        let op = "BatchLoader::new";
        if config.batch_size == 0 {
            return Err(DataError::invalid(op, "batch size 0"));
        }
        if config.workers == 0 {
            return Err(DataError::invalid(
                op,
                "0 workers (prefetch 0 builds batches on the caller's thread instead)",
            ));
        }
        normalize.validate()?;
        if normalize.channels() != dataset.channels() {
            return Err(DataError::invalid(
                op,
                format!(
                    "images have {} channels but the normalisation has {}",
                    dataset.channels(),
                    normalize.channels()
                ),
            ));
        }
        let out_shape = config.augment.output_shape(dataset.image_shape())?;
        Ok(Self {
            shared: Arc::new(Shared {
                dataset,
                tables: normalize.tables(),
                config,
                out_shape,
            }),
        })
    }

    /// An evaluation loader: [`LoaderConfig::eval`]`(batch_size)`.
    ///
    /// # Errors
    /// As [`BatchLoader::new`].
    pub fn evaluation(
        dataset: impl Into<Arc<Dataset>>,
        normalize: &Normalize,
        batch_size: usize,
    ) -> Result<Self, DataError> {
        Self::new(dataset, normalize, LoaderConfig::eval(batch_size))
    }

    /// The data set.
    pub fn dataset(&self) -> &Dataset {
        &self.shared.dataset
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.shared.config
    }

    /// The shape `[c, h, w]` of one image of a batch (after augmentation).
    pub fn image_shape(&self) -> [usize; 3] {
        self.shared.out_shape
    }

    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        let (n, b) = (self.shared.dataset.len(), self.shared.config.batch_size);
        if self.shared.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The order in which epoch `epoch` visits the samples.
    pub fn permutation(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.shared.dataset.len()).collect();
        if self.shared.config.shuffle {
            Rng::seed_from(self.shared.config.seed)
                .fork(epoch)
                .shuffle(&mut order);
        }
        order
    }

    /// The batches of epoch `epoch`. With a prefetch depth above 0 worker threads prepare
    /// them ahead; dropping the iterator early stops them.
    pub fn epoch(&self, epoch: u64) -> Batches {
        self.epoch_from(epoch, 0)
    }

    /// The batches of epoch `epoch` from batch `first` on (none when `first` is past the
    /// end): exactly the tail of [`BatchLoader::epoch`], for resuming mid-epoch.
    pub fn epoch_from(&self, epoch: u64, first: usize) -> Batches {
        let first = first.min(self.num_batches());
        let remaining = self.num_batches() - first;
        let config = &self.shared.config;
        if config.prefetch > 0 {
            let n = config.workers.max(1).min(remaining.max(1));
            let depth = config.prefetch.div_ceil(n).max(1);
            let mut lanes = Vec::with_capacity(n);
            for k in 0..n {
                let producer = self.producer(epoch, first + k, n);
                let (batch_tx, batch_rx) = mpsc::sync_channel(depth);
                let (spare_tx, spare_rx) = mpsc::channel();
                let spawned = std::thread::Builder::new()
                    .name(format!("ganglion-data-{k}"))
                    .spawn(move || run_worker(producer, &batch_tx, &spare_rx));
                match spawned {
                    Ok(worker) => lanes.push(Lane {
                        batches: Some(batch_rx),
                        spares: Some(spare_tx),
                        worker: Some(worker),
                    }),
                    Err(_) => break,
                }
            }
            // Without every thread to be had, the same batches are built on the caller's
            // thread (dropping the lanes stops the workers that did start).
            if lanes.len() == n {
                return Batches {
                    mode: Mode::Workers {
                        lanes,
                        next: 0,
                        recycled: 0,
                    },
                    remaining,
                };
            }
        }
        Batches {
            mode: Mode::Inline {
                producer: Box::new(self.producer(epoch, first, 1)),
                spare: None,
            },
            remaining,
        }
    }

    /// The producer of batches `first, first + stride, ...` of `epoch`.
    fn producer(&self, epoch: u64, first: usize, stride: usize) -> Producer {
        Producer {
            shared: Arc::clone(&self.shared),
            order: self.permutation(epoch),
            augment_rng: Augment::epoch_rng(self.shared.config.seed, epoch),
            next_batch: first,
            stride,
            num_batches: self.num_batches(),
            scratch: AugmentScratch::default(),
        }
    }
}

fn run_worker(mut producer: Producer, batches: &SyncSender<Batch>, spares: &Receiver<Batch>) {
    while let Some(batch) = producer.produce(spares.try_recv().ok()) {
        // The receiver is gone when the caller dropped the epoch early: stop quietly.
        if batches.send(batch).is_err() {
            return;
        }
    }
}

/// Builds every `stride`-th batch of one epoch, in order, starting at `next_batch`.
struct Producer {
    shared: Arc<Shared>,
    order: Vec<usize>,
    augment_rng: Rng,
    next_batch: usize,
    stride: usize,
    num_batches: usize,
    scratch: AugmentScratch,
}

impl Producer {
    /// The next batch, built in `spare`'s buffers when one is given.
    fn produce(&mut self, spare: Option<Batch>) -> Option<Batch> {
        if self.next_batch >= self.num_batches {
            return None;
        }
        let s = &*self.shared;
        let b = s.config.batch_size;
        let start = self.next_batch * b;
        let end = (start + b).min(self.order.len());
        self.next_batch += self.stride;
        let picks = &self.order[start..end];

        let [c, oh, ow] = s.out_shape;
        let shape = [picks.len(), c, oh, ow];
        let len = picks.len() * c * oh * ow;
        let (mut images, mut labels, mut indices) = match spare {
            // Same element count: reuse the tensor as is (no allocation at all).
            Some(spare) if spare.images.len() == len => (spare.images, spare.labels, spare.indices),
            Some(spare) => {
                let mut data = spare.images.into_vec();
                data.resize(len, 0.0);
                let t = Tensor::new(&shape, data).expect("loader: length was just set");
                (t, spare.labels, spare.indices)
            }
            None => (
                Tensor::zeros(&shape),
                Vec::with_capacity(b),
                Vec::with_capacity(b),
            ),
        };
        images
            .set_shape(&shape)
            .expect("loader: element count was just matched");
        labels.clear();
        indices.clear();

        let in_shape = s.dataset.image_shape();
        let plane = in_shape[1] * in_shape[2];
        let augment = s.config.augment;
        let data = images.data_mut();
        let scratch = &mut self.scratch;
        scratch.bytes.resize(c * oh * ow, 0);
        for (&i, out) in picks.iter().zip(data.chunks_exact_mut(c * oh * ow)) {
            let src = s.dataset.image(i);
            if augment.is_identity() {
                Normalize::fill(&s.tables, src, plane, out);
            } else if augment.works_on_bytes() {
                let mut rng = self.augment_rng.fork(i as u64);
                let plan = augment.plan(&mut rng, in_shape[1], in_shape[2]);
                let mut bytes = std::mem::take(&mut scratch.bytes);
                augment.render_bytes(&plan, src, in_shape, &mut bytes, scratch);
                Normalize::fill(&s.tables, &bytes, oh * ow, out);
                scratch.bytes = bytes;
            } else {
                // Crop and flip map bytes straight to normalised values: no byte buffer.
                let mut rng = self.augment_rng.fork(i as u64);
                let at = augment.draw(&mut rng, in_shape[1], in_shape[2]);
                augment.render(at, src, in_shape, out, |ch, p| s.tables[ch][usize::from(p)]);
            }
            labels.push(s.dataset.label(i));
            indices.push(i);
        }
        Some(Batch {
            images,
            labels,
            indices,
        })
    }
}

/// One worker: its queue of finished batches, its supply of spent ones, its thread.
struct Lane {
    batches: Option<Receiver<Batch>>,
    spares: Option<Sender<Batch>>,
    worker: Option<JoinHandle<()>>,
}

impl Drop for Lane {
    fn drop(&mut self) {
        // Closing the channels first wakes a worker blocked on a full queue.
        drop(self.batches.take());
        drop(self.spares.take());
        if let Some(worker) = self.worker.take() {
            // A worker panic was already reported by `next`, or is of no use while dropping:
            // never panic in drop.
            let _ = worker.join();
        }
    }
}

enum Mode {
    Inline {
        producer: Box<Producer>,
        spare: Option<Batch>,
    },
    Workers {
        lanes: Vec<Lane>,
        /// The lane holding the next batch in order.
        next: usize,
        /// Batches handed back so far, dealt to the lanes in turn.
        recycled: usize,
    },
}

/// The batches of one epoch, in order; from [`BatchLoader::epoch`].
///
/// Dropping it before the end stops the worker threads and waits for them (they are never
/// blocked for long: their only wait is on the channels this drop closes).
pub struct Batches {
    mode: Mode,
    remaining: usize,
}

impl Batches {
    /// Hands a spent batch back so that its buffers hold a later batch, sparing an
    /// allocation; optional, and without effect on the batches' contents.
    pub fn recycle(&mut self, batch: Batch) {
        match &mut self.mode {
            Mode::Inline { spare, .. } => *spare = Some(batch),
            Mode::Workers {
                lanes, recycled, ..
            } => {
                let lane = &lanes[*recycled % lanes.len()];
                *recycled += 1;
                if let Some(tx) = &lane.spares {
                    // A finished worker no longer takes spares; the batch is simply dropped.
                    let _ = tx.send(batch);
                }
            }
        }
    }
}

impl Iterator for Batches {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.remaining == 0 {
            return None;
        }
        let batch = match &mut self.mode {
            Mode::Inline { producer, spare } => producer.produce(spare.take()),
            Mode::Workers { lanes, next, .. } => {
                let n = lanes.len();
                let lane = &mut lanes[*next];
                *next = (*next + 1) % n;
                match lane.batches.as_ref().map(Receiver::recv) {
                    Some(Ok(batch)) => Some(batch),
                    _ => {
                        // The worker stopped before the end of the epoch: only a panic does
                        // that.
                        if let Some(Err(panic)) = lane.worker.take().map(JoinHandle::join) {
                            std::panic::resume_unwind(panic);
                        }
                        None
                    }
                }
            }
        };
        self.remaining = if batch.is_some() {
            self.remaining - 1
        } else {
            0
        };
        batch
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Batches {}

impl std::fmt::Debug for Batches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.mode {
            Mode::Inline { .. } => "inline",
            Mode::Workers { .. } => "workers",
        };
        f.debug_struct("Batches")
            .field("mode", &mode)
            .field("remaining", &self.remaining)
            .finish()
    }
}

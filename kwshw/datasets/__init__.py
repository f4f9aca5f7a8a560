"""Keyword-spotting corpora, splits, augmentation and cached feature extraction.

Two layouts are read, both into one :class:`Dataset` interface (a list of :class:`Item`, each
``path``, ``label_index``, ``speaker`` and where it sits in the file, plus ``labels``):

:class:`SpeechCommands`
    Google Speech Commands (one folder per word). Labels, in this order: ``yes no up down left
    right on off stop go _unknown_ _silence_`` (indices 0..11).

    - ``_unknown_``: the ``_unknown_/`` folder of the test archive *and* every word folder
      that is not a keyword (the 25 other words of the full set).
    - ``_silence_``: the ``_silence_/`` folder when it exists; otherwise 1 s clips cut
      deterministically from ``_background_noise_/`` (see "Silence clips" below).
    - Speaker: the 8-hex-digit id before ``_nohash_`` (``022cd682_nohash_0.wav`` and
      ``backward_0cb74144_nohash_2.wav.wav`` give ``022cd682`` and ``0cb74144``); silence
      clips have none (``None``).

:class:`WakeWord`
    The Picovoice wake-word benchmark layout (one folder per phrase, FLAC, 1-4 s clips).
    Binary labels ``["_other_", keyword]``: the keyword is index 1, every other folder (and,
    optionally, every Speech Commands clip) is ``_other_``. Speakers are unknown (``None``).

Splits
------
``split`` is one of ``"train"``, ``"validation"``, ``"test"`` or ``"all"``.

- Speech Commands with ``validation_list.txt`` / ``testing_list.txt`` at the root: the lists
  decide (paths relative to the root); every other speaker clip is ``train``.
- Otherwise :func:`which_set` on the speaker id, the hash rule of the original TensorFlow
  ``input_data.which_set`` with a salt: ``sha1(salt + ":" + speaker)`` as an integer, modulo
  ``2**27``, scaled to ``[0, 100]``; below ``validation_percentage`` is validation, below
  ``validation_percentage + testing_percentage`` test, the rest train. All clips of a speaker
  land in one split, in every class, and the assignment of a speaker never depends on which
  other files exist. The default salt is ``"kwshw"`` (:data:`DEFAULT_SPLIT_SALT`) because the
  canonical test archive *is* the set of speakers that the unsalted rule sends to "test":
  unsalted, every one of its speakers would land in the test split and nothing would be left
  to train on. ``split_salt=""`` reproduces TensorFlow's assignment exactly.
- Clips without a speaker (silence clips, wake-word clips) are split by :func:`which_set` on
  the key of the file instead: its base name for Speech Commands silence files, its path
  relative to the root (``"alexa/12.flac"``) for wake-word clips. Wake-word validation and
  test scores are therefore optimistic: a speaker's clips can be on both sides.

Silence clips (full Speech Commands only)
-----------------------------------------
Each ``_background_noise_`` recording is divided in time: the first ``100 - v - t`` percent
belong to train, the next ``v`` percent to validation and the last ``t`` percent to test, so
no stretch of noise is in two splits. A split gets ``ceil(silence_percentage / 100 * N)``
clips of 1 s (``N`` = its number of word clips), their start offsets spread evenly over the
split's regions of all the recordings (clips overlap when more are asked than fit).

How a clip becomes training examples
------------------------------------
Every :class:`Item` names its window rule (``Item.window``); :func:`extract` computes the
features of the whole clip and the ends (newest frame index) of its model windows:

- ``"last"`` (Speech Commands, 1 s clips): one window, ending at the last frame. A 1 s clip
  has 98 frames and the default window spans 97, so frames 1..97 are seen.
- ``"centroid"`` (wake-word clips, positives and by default negatives): one window centred on
  the energy centroid of the loudest stretch of the clip, see :func:`keyword_end`. Negatives
  get the same rule so that the position of the window cannot tell a keyword from a hard
  negative.
- ``"all:S"`` (wake-word negatives with ``negative_windows="all"``): every ``S``-th window,
  counting back from the one ending at the last frame down to the first complete one.

Windows that reach before the start of a clip are padded with zeros after normalization,
i.e. with the training mean (:func:`kwshw.features.stack_window`).

Augmentation
------------
:class:`Augmenter` (numpy, driven by a seeded ``numpy.random.Generator``) applies, in order,
to the audio before the front end: a random time shift (uniform integer samples within
``+-time_shift_ms``, zero fill, length kept), mixing of a random excerpt of real background
noise at a uniform random SNR with probability ``noise_prob``, a uniform random gain in dB,
and clipping to ``[-1, 1]``. :func:`extract` precomputes the features of ``copies``
augmented copies of every clip and caches them like the clean ones; the random stream of a
clip depends only on ``(seed, copy, clip)``, never on the order of processing or the number
of worker processes.

Modules
-------
One job each; the package re-exports their public names.

=====================  ====================================================================
``items``              :class:`Item`, :class:`Dataset`, :func:`load_item`, :class:`DatasetError`
``folders``            what a corpus folder holds: audio files, class folders, list files
``splits``             :func:`speaker_of`, :func:`which_set`
``speech_commands``    :class:`SpeechCommands` and its label names
``silence``            silence clips cut from ``_background_noise_``
``wake_word``          :class:`WakeWord`
``windows``            :func:`keyword_end`, :func:`window_ends`
``augment``            :func:`mix_at_snr`, :class:`Augmentation`, :class:`Augmenter`
``feature_set``        :class:`FeatureSet`
``cache``              the on-disk feature cache, :func:`cache_dir`
``workers``            features of clips, in this process or in a pool of worker processes
``extraction``         :func:`extract`
=====================  ====================================================================
"""

from .augment import Augmentation, Augmented, Augmenter, mix_at_snr
from .cache import cache_dir
from .extraction import extract
from .feature_set import FeatureSet
from .folders import AUDIO_SUFFIXES
from .items import Dataset, DatasetError, Item, load_item
from .speech_commands import BACKGROUND, SILENCE, SPEECH_COMMANDS_KEYWORDS, UNKNOWN, SpeechCommands
from .splits import DEFAULT_SPLIT_SALT, SPLITS, speaker_of, which_set
from .wake_word import OTHER, WakeWord
from .windows import keyword_end, window_ends

__all__ = [
    "AUDIO_SUFFIXES",
    "Augmentation",
    "Augmented",
    "Augmenter",
    "BACKGROUND",
    "DEFAULT_SPLIT_SALT",
    "Dataset",
    "DatasetError",
    "FeatureSet",
    "Item",
    "OTHER",
    "SILENCE",
    "SPEECH_COMMANDS_KEYWORDS",
    "SPLITS",
    "SpeechCommands",
    "UNKNOWN",
    "WakeWord",
    "cache_dir",
    "extract",
    "keyword_end",
    "load_item",
    "mix_at_snr",
    "speaker_of",
    "which_set",
    "window_ends",
]

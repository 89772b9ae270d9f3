"""The search-space protocol and the registry of spaces by name.

A search space is an object, not a set of module globals: it owns its candidate
lists, samples with an RNG that the caller passes in, validates configs with a
``ValueError`` naming the bad field, and encodes an architecture into a
fixed-length feature vector that every predictor consumes.

Spaces also describe themselves as a flat dict of categorical parameters
(``choices``/``to_params``/``from_params``) so that a generic optimiser such as
an Optuna sampler can explore any space without knowing its structure.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

__all__ = [
    "Arch",
    "RestrictedSpace",
    "SearchSpace",
    "available_spaces",
    "get_space",
    "register_space",
]


class Arch(Protocol):
    """What every architecture config offers: a JSON-able dict and a stable string."""

    def to_dict(self) -> dict[str, Any]: ...


ArchT = TypeVar("ArchT", bound=Arch)


class SearchSpace(ABC, Generic[ArchT]):
    """Base class of all search spaces.

    Subclasses implement the structural parts (sampling, validation, encoding,
    the flat parameter view); the helpers here (hashing, batch encoding,
    mutation, crossover) are derived from those and shared.
    """

    #: Registered name, e.g. ``"ofa-mbv3-tiny"``.
    name: str

    # -- structure --------------------------------------------------------
    @abstractmethod
    def sample(self, rng: np.random.Generator) -> ArchT:
        """Draw one architecture uniformly over the space's choices."""

    @abstractmethod
    def validate(self, arch: ArchT | Mapping[str, Any] | str) -> ArchT:
        """Return a validated architecture; raise ``ValueError`` naming the bad field."""

    @abstractmethod
    def encode(self, arch: ArchT) -> np.ndarray:
        """Fixed-length float feature vector (1-D, ``feature_dim`` long)."""

    @abstractmethod
    def decode(self, vector: np.ndarray) -> ArchT:
        """Invert :meth:`encode` (up to parts the encoding ignores, see :meth:`canonical`)."""

    @property
    @abstractmethod
    def feature_dim(self) -> int:
        """Length of :meth:`encode`'s output."""

    @abstractmethod
    def choices(self) -> dict[str, list[Any]]:
        """Flat categorical view of the space: parameter name -> candidate values."""

    @abstractmethod
    def to_params(self, arch: ArchT) -> dict[str, Any]:
        """Flat parameter dict of ``arch`` (keys of :meth:`choices`)."""

    @abstractmethod
    def from_params(self, params: Mapping[str, Any]) -> ArchT:
        """Architecture from a flat parameter dict (validated)."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """JSON-able constructor arguments: enough to rebuild this space exactly."""

    # -- derived helpers ---------------------------------------------------
    def canonical(self, arch: ArchT) -> ArchT:
        """The representative of ``arch``'s equivalence class (same network).

        Spaces whose configs carry values that do not change the network (e.g.
        kernel sizes of skipped blocks) override this.
        """
        return arch

    def encode_many(self, archs: Iterable[ArchT]) -> np.ndarray:
        rows = [self.encode(a) for a in archs]
        if not rows:
            return np.zeros((0, self.feature_dim), dtype=np.float32)
        return np.stack(rows).astype(np.float32, copy=False)

    def arch_hash(self, arch: ArchT) -> str:
        """Stable identity of the *network* (two configs that build the same net collide)."""
        canonical = self.canonical(self.validate(arch))
        payload = json.dumps(canonical.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha1(f"{self.name}:{payload}".encode()).hexdigest()

    def mutate(self, arch: ArchT, rng: np.random.Generator, prob: float = 0.1) -> ArchT:
        """Resample each flat parameter with probability ``prob``."""
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {prob}")
        params = self.to_params(arch)
        for key, values in self.choices().items():
            if rng.random() < prob:
                params[key] = values[int(rng.integers(len(values)))]
        return self.from_params(params)

    def crossover(self, a: ArchT, b: ArchT, rng: np.random.Generator) -> ArchT:
        """Uniform crossover of the flat parameters of two parents."""
        pa, pb = self.to_params(a), self.to_params(b)
        child = {k: (pa[k] if rng.random() < 0.5 else pb[k]) for k in pa}
        return self.from_params(child)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


SpaceFactory = Callable[..., SearchSpace[Any]]


class _SpaceRegistry:
    """Maps names to factories. One instance lives in this module; it is only
    written by ``@register_space`` at import time, so it behaves as a constant."""

    def __init__(self) -> None:
        self._factories: dict[str, SpaceFactory] = {}

    def register(self, name: str, factory: SpaceFactory) -> None:
        if name in self._factories:
            raise ValueError(f"search space {name!r} is already registered")
        self._factories[name] = factory

    def create(self, name: str, **kwargs: Any) -> SearchSpace[Any]:
        try:
            factory = self._factories[name]
        except KeyError:
            known = ", ".join(sorted(self._factories)) or "none"
            raise ValueError(f"unknown search space {name!r}; known spaces: {known}") from None
        return factory(**kwargs)

    def names(self) -> Sequence[str]:
        return sorted(self._factories)


_REGISTRY = _SpaceRegistry()

F = TypeVar("F", bound=SpaceFactory)


def register_space(name: str) -> Callable[[F], F]:
    """Decorator: register a factory (class or function) under ``name``."""

    def decorator(factory: F) -> F:
        _REGISTRY.register(name, factory)
        return factory

    return decorator


def get_space(name: str, **overrides: Any) -> SearchSpace[Any]:
    """Create the registered space ``name``; keyword arguments override its defaults."""
    return _REGISTRY.create(name, **overrides)


def available_spaces() -> Sequence[str]:
    return _REGISTRY.names()


def space_from_config(name: str, config: Mapping[str, Any]) -> SearchSpace[Any]:
    """Rebuild a space stored as ``(name, space.config())`` (e.g. in the database)."""
    return _REGISTRY.create(name, **dict(config))


class RestrictedSpace(SearchSpace[Any]):
    """A view of ``base`` in which some parameters may take fewer values.

    Used to search only the promising part of a space (e.g. after pruning
    choices that a predictor found harmful). Sampling and the flat parameter
    view (what an optimiser explores) are restricted; everything that defines
    an architecture's identity — name, validation, encoding, hashing — is the
    base space's, so architectures, predictors and stored results stay
    interchangeable between the two.
    """

    def __init__(self, base: SearchSpace[Any], choices: Mapping[str, Sequence[Any]]) -> None:
        full = base.choices()
        unknown = sorted(set(choices) - set(full))
        if unknown:
            raise ValueError(f"restricted parameter(s) {unknown} are not in space {base.name!r}")
        restricted: dict[str, list[Any]] = {}
        for key, values in full.items():
            allowed = list(choices.get(key, values))
            extra = [v for v in allowed if v not in values]
            if extra:
                raise ValueError(
                    f"parameter {key!r} of space {base.name!r} has no value(s) {extra}"
                )
            if not allowed:
                raise ValueError(f"parameter {key!r} must keep at least one value")
            restricted[key] = allowed
        self.base = base
        self.name = base.name
        self._choices = restricted

    def sample(self, rng: np.random.Generator) -> Any:
        params = {k: v[int(rng.integers(len(v)))] for k, v in self._choices.items()}
        return self.base.from_params(params)

    def validate(self, arch: Any) -> Any:
        return self.base.validate(arch)

    def encode(self, arch: Any) -> np.ndarray:
        return self.base.encode(arch)

    def decode(self, vector: np.ndarray) -> Any:
        return self.base.decode(vector)

    @property
    def feature_dim(self) -> int:
        return self.base.feature_dim

    def choices(self) -> dict[str, list[Any]]:
        return {k: list(v) for k, v in self._choices.items()}

    def to_params(self, arch: Any) -> dict[str, Any]:
        return self.base.to_params(arch)

    def from_params(self, params: Mapping[str, Any]) -> Any:
        return self.base.from_params(params)

    def config(self) -> dict[str, Any]:
        return self.base.config()

    def canonical(self, arch: Any) -> Any:
        return self.base.canonical(arch)

    def contains(self, arch: Any) -> bool:
        """True when every parameter of ``arch`` is an allowed value here."""
        params = self.base.to_params(self.base.validate(arch))
        return all(params[k] in v for k, v in self._choices.items())

    def __getattr__(self, attr: str) -> Any:
        # Space-specific helpers (e.g. NB201's index, OFA's widths) come from the base.
        if attr == "base":
            raise AttributeError(attr)
        value = getattr(self.base, attr)
        if attr == "all_archs":
            # An enumerable base enumerates only what this view allows.
            return lambda: [a for a in value() if self.contains(a)]
        return value

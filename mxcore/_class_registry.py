"""Name registries for serialisable classes (MXNet's ``mxnet.registry``).

Used by ``mx.initializer`` and ``mx.metric``: ``register(klass)`` files a class
under its lower-cased name, ``alias(*names)`` under extra names, and
``create(spec, *args, **kwargs)`` builds an instance from

* an instance of the base class (returned as is, no extra arguments allowed),
* a name (case-insensitive),
* a JSON string ``'["name", {kwargs}]'`` (what ``Initializer.dumps()`` writes)
  or ``'{"<nickname>": "name", ...}'``,
* a dict ``{"<nickname>": "name", **kwargs}``.
"""
from __future__ import annotations

import json
import warnings

_REGISTRY: dict = {}


def get_registry(base_class) -> dict:
    """A copy of the name -> class table of ``base_class``."""
    return dict(_REGISTRY.setdefault(base_class, {}))


def get_register_func(base_class, nickname: str):
    registry = _REGISTRY.setdefault(base_class, {})

    def register(klass, name=None):
        if not (isinstance(klass, type) and issubclass(klass, base_class)):
            raise TypeError(f"can only register subclasses of {base_class.__name__}, "
                            f"got {klass!r}")
        name = (klass.__name__ if name is None else name).lower()
        old = registry.get(name)
        if old is not None and old is not klass:
            warnings.warn(f"new {nickname} {klass.__module__}.{klass.__name__} registered "
                          f"with name {name!r} overrides {old.__module__}.{old.__name__}",
                          UserWarning, stacklevel=2)
        registry[name] = klass
        return klass

    register.__doc__ = f"Register a {nickname} class under its lower-cased name."
    return register


def get_alias_func(base_class, nickname: str):
    register = get_register_func(base_class, nickname)

    def alias(*aliases):
        def reg(klass):
            for name in aliases:
                register(klass, name)
            return klass
        return reg

    alias.__doc__ = f"Register a {nickname} class under extra names."
    return alias


def get_create_func(base_class, nickname: str):
    registry = _REGISTRY.setdefault(base_class, {})

    def create(*args, **kwargs):
        if args:
            spec, args = args[0], args[1:]
        elif nickname in kwargs:
            spec = kwargs.pop(nickname)
        else:
            raise TypeError(f"create() needs the {nickname} to create")
        if isinstance(spec, base_class):
            if args or kwargs:
                raise ValueError(f"{nickname} {spec!r} is already an instance: extra "
                                 "arguments are invalid")
            return spec
        if isinstance(spec, dict):
            if args or kwargs:
                raise ValueError("create() from a dict takes no extra arguments")
            return create(**spec)
        if not isinstance(spec, str):
            raise TypeError(f"{nickname} must be a name, a JSON string, a dict or a "
                            f"{base_class.__name__} instance, got {type(spec).__name__}")
        text = spec.strip()
        if text.startswith("["):
            if args or kwargs:
                raise ValueError("create() from a JSON string takes no extra arguments")
            name, kw = json.loads(text)
            return create(name, **kw)
        if text.startswith("{"):
            if args or kwargs:
                raise ValueError("create() from a JSON string takes no extra arguments")
            return create(**json.loads(text))
        key = text.lower()
        if key not in registry:
            raise ValueError(f"unknown {nickname} {spec!r}; registered names: "
                             f"{', '.join(sorted(registry))} (register new ones with "
                             f"{nickname}.register)")
        return registry[key](*args, **kwargs)

    create.__doc__ = (f"Create a {nickname} from a name, a JSON string, a dict or an "
                      f"instance (returned as is).")
    return create

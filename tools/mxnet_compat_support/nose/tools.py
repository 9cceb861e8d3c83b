"""``nose.tools`` as MXNet's tests use it: the unittest assertions under PEP 8 names
(``assert_equal``, ``assert_raises``...), ``ok_``, ``eq_``, ``raises``, ``make_decorator``,
``with_setup``, ``timed``, ``istest``/``nottest``; same behaviour as nose 1.3.7."""
import re
import time
import unittest

__all__ = ["ok_", "eq_", "make_decorator", "raises", "set_trace", "timed", "with_setup",
           "TimeExpired", "istest", "nottest"]


def ok_(expr, msg=None):
    if not expr:
        raise AssertionError(msg)


def eq_(a, b, msg=None):
    if not a == b:
        raise AssertionError(msg or "%r != %r" % (a, b))


def make_decorator(func):
    """Copies name, dict, doc and module onto the wrapper, without ``__wrapped__``, as nose
    does: pytest then sees the wrapper's own ``(*args, **kwargs)`` and asks no fixtures."""
    def decorate(newfunc):
        name = getattr(func, "compat_func_name", func.__name__)
        newfunc.__dict__ = func.__dict__
        newfunc.__doc__ = func.__doc__
        newfunc.__module__ = func.__module__
        if not hasattr(newfunc, "compat_co_firstlineno"):
            newfunc.compat_co_firstlineno = func.__code__.co_firstlineno
        try:
            newfunc.__name__ = name
        except TypeError:
            newfunc.compat_func_name = name
        return newfunc
    return decorate


def raises(*exceptions):
    valid = " or ".join(e.__name__ for e in exceptions)

    def decorate(func):
        name = func.__name__

        def newfunc(*arg, **kw):
            try:
                func(*arg, **kw)
            except exceptions:
                pass
            else:
                raise AssertionError("%s() did not raise %s" % (name, valid))
        return make_decorator(func)(newfunc)
    return decorate


def set_trace():
    import pdb
    import sys
    pdb.Pdb().set_trace(sys._getframe().f_back)


class TimeExpired(AssertionError):
    pass


def timed(limit):
    def decorate(func):
        def newfunc(*arg, **kw):
            start = time.time()
            result = func(*arg, **kw)
            end = time.time()
            if end - start > limit:
                raise TimeExpired("Time limit (%s) exceeded" % limit)
            return result
        return make_decorator(func)(newfunc)
    return decorate


def with_setup(setup=None, teardown=None):
    def decorate(func, setup=setup, teardown=teardown):
        if setup:
            if hasattr(func, "setup"):
                _old_s = func.setup

                def _s():
                    setup()
                    _old_s()
                func.setup = _s
            else:
                func.setup = setup
        if teardown:
            if hasattr(func, "teardown"):
                _old_t = func.teardown

                def _t():
                    _old_t()
                    teardown()
                func.teardown = _t
            else:
                func.teardown = teardown
        return func
    return decorate


def istest(func):
    func.__test__ = True
    return func


def nottest(func):
    func.__test__ = False
    return func


class _Dummy(unittest.TestCase):
    def nop(self):
        pass


_t = _Dummy("nop")


def _pep8(name):
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


# nose exports each camel-case TestCase assertion (assertEqual -> assert_equal) that has
# no underscore of its own, bound to one TestCase instance.
for _name in [n for n in dir(_t) if n.startswith("assert") and "_" not in n]:
    globals()[_pep8(_name)] = getattr(_t, _name)
    __all__.append(_pep8(_name))
assert_equals = assert_equal  # noqa: F821 (set above; nose had this alias too)
__all__.append("assert_equals")
_t.maxDiff = None
del _name

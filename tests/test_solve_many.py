"""solvers.solve_many: validation before work, batch registration, batched == one at a time."""

import dataclasses
import functools

import numpy as np
import pytest
from conftest import random_model

import solvers
from solvers import AndersonModel, SolverResult, register_solver, solve, solve_many, supports_batch
from solvers import registry


@pytest.fixture
def clean_registry(monkeypatch):
    """Registrations made in a test are undone after it."""
    for table in ("_REGISTRY", "_CHECKS", "_IDENTITIES", "_BATCHES"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))


def _fields(r: SolverResult) -> dict:
    return {f.name: getattr(r, f.name) for f in dataclasses.fields(r) if f.name != "wall_time"}


def assert_same_result(a: SolverResult, b: SolverResult, atol: float) -> None:
    """Every array and number of two results agree to ``atol`` (``info`` scalars too)."""
    fa, fb = _fields(a), _fields(b)
    for key in fa:
        va, vb = fa[key], fb[key]
        if key == "info":
            assert set(va) == set(vb), key
            for k in va:
                if isinstance(va[k], (float, np.floating)):
                    assert abs(va[k] - vb[k]) <= atol, (k, va[k], vb[k])
            continue
        if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
            assert va.shape == vb.shape, key
            assert np.max(np.abs(va - vb), initial=0.0) <= atol, (key, np.max(np.abs(va - vb)))
        elif isinstance(va, float) and isinstance(vb, float):
            assert abs(va - vb) <= atol, (key, va, vb)
        else:
            assert va == vb, (key, va, vb)


MODELS = [random_model(s, 2, beta, half_filling=s % 2 == 0)
          for s, beta in zip(range(4), (5.0, 10.0, 20.0, 8.0))]


def test_empty_list_gives_empty_list():
    assert solve_many("ipt", []) == []
    assert solve_many("ed", (), cutoff=1e-12) == []


@pytest.mark.parametrize("name", ["ed", "nca"])
def test_loop_fallback_equals_solve(name):
    assert not supports_batch(name)
    many = solve_many(name, MODELS[:2])
    for m, r in zip(MODELS[:2], many):
        assert_same_result(r, solve(name, m), 0.0)


def test_wall_time_is_the_batch_time_per_model():
    many = solve_many("ed", MODELS)
    assert len({r.wall_time for r in many}) == 1
    assert many[0].wall_time > 0


@pytest.mark.parametrize("models, message", [
    (MODELS[0], "models must be a sequence of AndersonModel"),
    ("abc", "models must be a sequence"),
    ([MODELS[0], {"U": 1.0}], r"models\[1\] must be an AndersonModel, got dict"),
    ([MODELS[0], None], r"models\[1\] must be an AndersonModel"),
])
def test_bad_models_are_refused_before_any_work(models, message):
    with pytest.raises(ValueError, match=message):
        solve_many("ipt", models)


@pytest.mark.parametrize("name, options, message", [
    ("nosuch", {}, "unknown solver 'nosuch'"),
    ("ed", {"cutof": 1e-8}, "did you mean 'cutoff'"),
    ("ed", {"cutoff": "1e-8"}, "option 'cutoff' must be a number"),
    ("ipt", {"n_iw": True}, "option 'n_iw' must be an integer"),
    ("hubbard_i", {"n_l": 2.5}, "option 'n_l' must be an integer"),
])
def test_bad_options_are_refused_before_any_work(clean_registry, name, options, message):
    calls = []
    if name != "nosuch":
        original = registry._REGISTRY[name]

        @functools.wraps(original)  # same signature and annotations
        def spy(model, **kw):
            calls.append(model)
            return original(model, **kw)

        registry._REGISTRY[name] = spy
    with pytest.raises(ValueError, match=message) as err:
        solve_many(name, MODELS, **options)
    assert "\n" not in str(err.value)
    assert calls == []


def test_registered_batch_function_is_used(clean_registry):
    seen = []

    def one(model: AndersonModel, *, scale: float = 1.0) -> SolverResult:
        r = solve("hubbard_i", model)
        return dataclasses.replace(r, solver="toy", density=scale * r.density)

    def many(models, *, scale: float = 1.0):
        seen.append(len(models))
        return [one(m, scale=scale) for m in models]

    register_solver("toy", one, batch=many)
    assert supports_batch("toy")
    out = solve_many("toy", MODELS, scale=2.0)
    assert seen == [len(MODELS)]
    for m, r in zip(MODELS, out):
        assert r.density == 2.0 * solve("hubbard_i", m).density
    with pytest.raises(ValueError, match="option 'scale' must be a number"):
        solve_many("toy", MODELS, scale="2")
    assert seen == [len(MODELS)]
    # re-registering without a batch function removes it
    register_solver("toy", one, replace=True)
    assert not supports_batch("toy")


def test_batch_function_returning_the_wrong_count_is_an_error(clean_registry):
    def one(model: AndersonModel) -> SolverResult:
        return solve("hubbard_i", model)

    register_solver("short", one, batch=lambda models: [one(models[0])])
    with pytest.raises(RuntimeError, match="returned 1 results for 4 models"):
        solve_many("short", MODELS)


def test_supports_batch_refuses_unknown_names():
    with pytest.raises(ValueError, match="unknown solver"):
        supports_batch("nosuch")


def test_public_api():
    assert solvers.solve_many is solve_many and solvers.supports_batch is supports_batch


# ------------------------------------------------------------- batched IPT and Hubbard-I
def _continuous(model: AndersonModel, n_iw: int = 2048) -> AndersonModel:
    return AndersonModel(U=model.U, eps_d=model.eps_d, beta=model.beta,
                         delta_iw=model.delta(n_iw))


def _batch_models() -> list[AndersonModel]:
    """Half filling, off half filling, U = 0, the atomic limit, discrete baths of 0-5 sites and
    delta_iw, at betas whose default tau meshes differ (1025, 2049, 4097 points), interleaved."""
    betas = (8.0, 30.0, 60.0, 100.0)
    out = [random_model(100 + s, s % 6, betas[s % 4], half_filling=s % 3 == 0)
           for s in range(12)]
    out += [_continuous(random_model(200 + s, 4, betas[s % 4], half_filling=s % 2 == 0))
            for s in range(4)]
    out += [AndersonModel(U=0.0, eps_d=0.3, beta=20.0, bath_eps=[0.1, -0.4], bath_v=[0.4, 0.2]),
            AndersonModel(U=2.5, eps_d=-0.4, beta=15.0, bath_eps=[], bath_v=[]),
            _continuous(AndersonModel(U=0.0, eps_d=-0.2, beta=30.0, bath_eps=[0.3],
                                      bath_v=[0.5]))]
    order = np.random.default_rng(7).permutation(len(out))
    return [out[i] for i in order]


BATCH = _batch_models()


@pytest.fixture(scope="module")
def batched_and_single():
    opts = {"ipt": {"n_tau": 65}, "hubbard_i": {"n_tau": 65}}
    return {name: (solve_many(name, BATCH, **opts[name]),
                   [solve(name, m, **opts[name]) for m in BATCH]) for name in opts}


@pytest.mark.parametrize("name", ["ipt", "hubbard_i"])
def test_batch_equals_one_at_a_time(batched_and_single, name):
    assert supports_batch(name)
    many, single = batched_and_single[name]
    assert len(many) == len(BATCH)
    for r_many, r_one in zip(many, single):
        assert_same_result(r_many, r_one, 1e-12)
    assert {r.converged for r in many} == {True}


def test_batch_covers_every_branch(batched_and_single):
    methods = {r.info["method"] for r in batched_and_single["ipt"][0]}
    assert methods == {"half-filling", "modified", "non-interacting"}
    assert len({r.info["fft_tau_points"] for r in batched_and_single["ipt"][0]}) == 3
    # each result belongs to its model: beta and particle-hole symmetry follow the input order
    for m, r in zip(BATCH, batched_and_single["hubbard_i"][0]):
        assert r.beta == m.beta
        assert r.info["particle_hole_symmetric"] == m.is_particle_hole_symmetric()


@pytest.mark.parametrize("name", ["ipt", "hubbard_i"])
def test_batch_options_reach_every_model(name):
    many = solve_many(name, BATCH[:5], n_iw=2048, n_l=40, max_iter=3)
    for m, r in zip(BATCH[:5], many):
        one = solve(name, m, n_iw=2048, n_l=40, max_iter=3)
        assert r.g_iw.size == 2048 and r.g_l.size == 40
        assert_same_result(r, one, 1e-12)


def test_iteration_limit_in_a_batch_is_per_model():
    """A row stopped by max_iter does not stop the others, nor change their results."""
    hard, easy = random_model(5, 4, 30.0), random_model(6, 4, 30.0, half_filling=True)
    many = solve_many("ipt", [hard, easy], max_iter=2)
    assert not many[0].converged and many[0].iterations == 2
    assert many[1].converged
    assert_same_result(many[1], solve("ipt", easy), 1e-12)


@pytest.mark.parametrize("name, bad, message", [
    ("ipt", AndersonModel(U=2.0, eps_d=-1.0, beta=1e4, bath_eps=[-0.5], bath_v=[0.5]),
     r"models\[1\]: IPT: n_iw=1024 Matsubara frequencies reach only"),
    ("ipt", _continuous(random_model(1, 2, 10.0), n_iw=100), r"models\[1\]: delta_iw holds 100"),
    ("hubbard_i", _continuous(random_model(1, 2, 10.0), n_iw=100),
     r"models\[1\]: delta_iw holds 100"),
])
def test_bad_model_in_a_batch_is_named_by_its_index(name, bad, message):
    with pytest.raises(ValueError, match=message):
        solve_many(name, [BATCH[0], bad, BATCH[1]])


def test_vectorised_root_search_equals_one_row_at_a_time():
    from solvers._roots import expand_bracket, find_roots
    c = np.array([0.3, 2.0, 7.5, 1e-6, 40.0])

    def f(x, rows):   # decreasing, one root sqrt(c) + 0.1 per row
        return c[rows] - (x - 0.1) ** 3 * np.abs(x - 0.1) ** -1.0

    def roots(rows):
        lo, hi, f_lo, f_hi = expand_bracket(lambda x, r: f(x, rows[r]), np.zeros(rows.size))
        return find_roots(lambda x, r: f(x, rows[r]), lo, hi, f_lo, f_hi, xtol=1e-14,
                          rtol=4e-16, max_iter=100)

    x, fx, ok, its = roots(np.arange(c.size))
    assert ok.all()
    np.testing.assert_allclose(x, np.sqrt(c) + 0.1, rtol=1e-13)
    for i in range(c.size):
        xi, fi, oki, itsi = roots(np.array([i]))
        assert xi[0] == x[i] and itsi[0] == its[i] and fi[0] == fx[i]
    # the evaluation limit: best point so far, not converged
    x2, _, ok2, its2 = find_roots(lambda x, r: f(x, r), np.zeros(c.size), np.full(c.size, 10.0),
                                  f(np.zeros(c.size), np.arange(c.size)),
                                  f(np.full(c.size, 10.0), np.arange(c.size)),
                                  xtol=1e-14, rtol=4e-16, max_iter=2)
    assert not ok2.any() and (its2 == 2).all()


def test_krr_rows_give_the_same_bits_alone_and_in_any_batch():
    """The KRR prediction and :func:`rows_matmul` of a row do not depend on the other rows of
    the call (fixed blocks of 4 rows through BLAS), even with large cancelling dual
    coefficients (a small ridge) and Fortran-ordered input."""
    from mldmft.ml.krr import KRRModel, rows_matmul

    rng = np.random.default_rng(3)
    x_fit = rng.normal(size=(300, 24))
    model = KRRModel(kernel="rbf", gamma=1.0 / 24, alpha=1e-6, x_fit=x_fit,
                     dual_coef=rng.normal(size=(300, 7)) * 1e4)
    x = rng.normal(size=(11, 24)) * 0.3 + x_fit[:11]
    one = np.concatenate([model(x[i:i + 1])[0] for i in range(11)])
    one_mm = np.concatenate([rows_matmul(x[i:i + 1], x_fit.T) for i in range(11)])
    for n in (2, 5, 8, 11):
        rows = rng.permutation(11)[:n]
        batch = np.asfortranarray(x[rows])
        assert np.array_equal(model(batch)[0], one[rows])
        assert np.array_equal(rows_matmul(batch, x_fit.T), one_mm[rows])
    exact = np.exp(-model.gamma * ((x[:, None, :] - x_fit[None]) ** 2).sum(-1)) @ model.dual_coef
    np.testing.assert_allclose(one, exact, rtol=1e-9, atol=1e-9 * np.abs(exact).max())

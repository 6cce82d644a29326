"""Every registered function is declared as an entry point, and back."""

import sys

import pytest
import spacy
from spacy.util import registry

import spacy_spanbert  # noqa: F401

if sys.version_info >= (3, 10):
    from importlib.metadata import entry_points
else:  # pragma: no cover
    from importlib_metadata import entry_points

GROUPS = {
    "spacy_factories": None,
    "spacy_architectures": registry.architectures,
    "spacy_misc": registry.misc,
    "spacy_scorers": registry.scorers,
    "spacy_callbacks": registry.callbacks,
}


def _declared(group):
    return {ep.name: ep.value for ep in entry_points(group=group) if ep.value.startswith("spacy_spanbert")}


def _registered(reg):
    return {name for name in reg.get_all() if name.startswith("spacy-spanbert.")}


@pytest.mark.parametrize("group", ["spacy_architectures", "spacy_misc", "spacy_scorers", "spacy_callbacks"])
def test_registry_entry_points_match(group):
    declared = _declared(group)
    assert set(declared) == _registered(GROUPS[group])
    for name, value in declared.items():
        module, attr = value.split(":")
        assert getattr(__import__(module, fromlist=[attr]), attr) is GROUPS[group].get(name)


def test_registry_factories_match():
    declared = _declared("spacy_factories")
    ours = {
        name
        for name in spacy.registry.factories.get_all()
        if spacy.registry.factories.get(name).__module__.startswith("spacy_spanbert")
    }
    assert set(declared) == {name.split(".")[-1] for name in ours}
    assert "spanbert" in declared


def test_registry_names_are_namespaced_and_versioned():
    for reg in (registry.architectures, registry.misc, registry.scorers):
        for name in _registered(reg):
            assert name.rsplit(".", 1)[-1].startswith("v")


@pytest.mark.parametrize("name", ["spanbert_textcat", "spanbert_textcat_multilabel"])
def test_registry_textcat_factories_declared(name):
    declared = {ep.name: ep for ep in entry_points(group="spacy_factories")}
    assert name in declared
    factory = declared[name].load()
    assert factory is spacy.registry.factories.get(name)
    assert spacy.Language.has_factory(name)

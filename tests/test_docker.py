"""The Dockerfile, setup.py, the constraints files and README.md agree.

The image itself is built and run by tools/docker_check.sh (in CI where
podman installs, on a Debian stand-in for the CUDA base); these tests read
the files as text, everywhere, and fail when one of them drifts from the
others:
the Chainer pin, the CuPy major version of the ``cuda12`` extra, the
``setuptools<81`` constraint exported as both ``PIP_CONSTRAINT`` and
``PIP_BUILD_CONSTRAINT``, Python 3.11 and ``numpy<2`` on the faithful stack.
"""
import ast
import json
import os
import re
import shlex

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from support import REPO

DOCKERFILE = os.path.join(REPO, 'Dockerfile')
SETUP = os.path.join(REPO, 'setup.py')
README = os.path.join(REPO, 'README.md')
CI_RUN = os.path.join(REPO, '.ci', 'run')

FAITHFUL_PYTHON = '3.11'


def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


# --------------------------------------------------------------- parsers


def dockerfile_instructions(text):
    """``[(INSTRUCTION, arguments)]`` with continuations joined, comments out."""
    out = []
    pending = ''
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith('#')):
            continue
        if pending and stripped.startswith('#'):
            continue  # comment lines inside a continued instruction
        if stripped.endswith('\\'):
            pending += stripped[:-1].rstrip() + ' '
            continue
        pending += stripped
        keyword, _, args = pending.partition(' ')
        out.append((keyword.upper(), args.strip()))
        pending = ''
    assert not pending, 'Dockerfile ends inside a continued line'
    return out


def docker_args(instructions):
    """``ARG name=default`` values."""
    args = {}
    for keyword, value in instructions:
        if keyword == 'ARG':
            name, _, default = value.partition('=')
            args[name.strip()] = default.strip()
    return args


def docker_env(instructions):
    """Every ``ENV key=value`` (the ``key=value`` form only)."""
    env = {}
    for keyword, value in instructions:
        if keyword == 'ENV':
            for item in shlex.split(value):
                key, sep, val = item.partition('=')
                assert sep, 'use ENV key=value, got %r' % item
                env[key] = val
    return env


def setup_constants_and_extras():
    """Module-level string constants of setup.py and its ``setup()`` keywords.

    Returns:
        tuple: ``(constants, install_requires, extras_require,
        python_requires)`` with names resolved to their strings.
    """
    tree = ast.parse(read(SETUP))
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = node.value.value

    def value(node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return constants[node.id]
        if isinstance(node, (ast.List, ast.Tuple)):
            return [value(e) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {value(k): value(v) for k, v in zip(node.keys, node.values)}
        raise AssertionError('setup.py: cannot read %s' % ast.dump(node))

    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and getattr(n.func, 'id', None) == 'setup']
    assert len(calls) == 1, 'setup.py should call setup() once'
    keywords = {k.arg: k.value for k in calls[0].keywords}
    return (constants, value(keywords['install_requires']),
            value(keywords['extras_require']),
            value(keywords['python_requires']))


def requirement_lines(path):
    """Requirement lines of a constraints file, without comments."""
    lines = []
    for line in read(path).splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            lines.append(line.replace(' ', ''))
    return lines


def spec_allows(spec, version):
    """Whether a PEP 440 specifier set such as ``>=13,<14`` admits
    ``version``."""
    return SpecifierSet(spec).contains(version, prereleases=True)


def split_requirement(req):
    """``'cupy-cuda12x>=13,<14'`` -> ``('cupy-cuda12x', '>=13,<14')``."""
    parsed = Requirement(req)
    return canonicalize_name(parsed.name), str(parsed.specifier)


def fenced_blocks(markdown):
    """The contents of the fenced code blocks of a Markdown text."""
    return re.findall(r'^```[^\n]*\n(.*?)^```', markdown, re.S | re.M)


RECIPE_RE = re.compile(
    r'PIP_CONSTRAINT=(?P<c>\S+)\s+PIP_BUILD_CONSTRAINT=(?P<b>\S+)\s+'
    r'(?:\S*/)?pip3?\s+install\s+(?P<rest>[^&;|\n]*)')


def pip_recipes(text):
    """``(constraint, build_constraint, extras)`` of each recipe command."""
    found = []
    for m in RECIPE_RE.finditer(text.replace('\\\n', ' ')):
        extras = re.search(r"-e\s+['\"]?\.\[([^\]]*)\]", m.group('rest'))
        found.append((m.group('c'), m.group('b'),
                      extras.group(1).split(',') if extras else None))
    return found


def constraints_basename(value):
    """``$PWD/constraints.txt`` -> ``constraints.txt``."""
    return os.path.basename(value.strip('\'"'))


# ----------------------------------------------------------------- fixtures


@pytest.fixture(scope='module')
def dockerfile():
    return dockerfile_instructions(read(DOCKERFILE))


@pytest.fixture(scope='module')
def setup_info():
    return setup_constants_and_extras()


@pytest.fixture(scope='module')
def docker_recipe(dockerfile):
    runs = [v for k, v in dockerfile if k == 'RUN']
    recipes = [r for run in runs for r in pip_recipes(run)]
    assert len(recipes) == 1, (
        'the Dockerfile should install the package once with the README\'s '
        'recipe (PIP_CONSTRAINT=... PIP_BUILD_CONSTRAINT=... pip install), '
        'found %d' % len(recipes))
    return recipes[0]


# ------------------------------------------------------------------- tests


def test_parsers_on_known_text():
    text = ('# c\nFROM a:b\nARG X=1\nENV A=1 \\\n    B="two words"\n'
            'RUN echo 1 \\\n  # inner comment\n  && echo 2\n'
            'CMD ["python", "x.py"]\n')
    ins = dockerfile_instructions(text)
    assert [k for k, _ in ins] == ['FROM', 'ARG', 'ENV', 'RUN', 'CMD']
    assert docker_env(ins) == {'A': '1', 'B': 'two words'}
    assert docker_args(ins) == {'X': '1'}
    assert ins[3][1] == 'echo 1 && echo 2'
    assert pip_recipes("PIP_CONSTRAINT=$PWD/c.txt PIP_BUILD_CONSTRAINT=$PWD/c.txt "
                       ".venv/bin/pip install -e '.[test,plot]' && x") == [
        ('$PWD/c.txt', '$PWD/c.txt', ['test', 'plot'])]
    assert spec_allows('>=13,<14', '13.6.0')
    assert not spec_allows('>=13,<14', '14.0')
    assert not spec_allows('>=13,<14', '12.3')
    assert spec_allows('==7.8.1', '7.8.1') and not spec_allows('==7.8.1', '7.8')


def base_image(instructions):
    """The image ``FROM`` names, ``${NAME}`` resolved from the ARGs before it."""
    froms = [i for i, (k, _) in enumerate(instructions) if k == 'FROM']
    assert len(froms) == 1, 'one FROM expected, found %d' % len(froms)
    args = docker_args(instructions[:froms[0]])
    image = instructions[froms[0]][1].split()[0]
    return re.sub(r'\$\{?(\w+)\}?', lambda m: args[m.group(1)], image)


def test_base_image_is_an_arg_for_the_stand_in(dockerfile):
    """tools/docker_check.sh swaps the base through ``BASE_IMAGE``, so the
    base must be that ARG, declared before FROM, and nothing else differs."""
    froms = [v for k, v in dockerfile if k == 'FROM']
    assert froms == ['${BASE_IMAGE}']
    assert base_image(dockerfile) == docker_args(dockerfile)['BASE_IMAGE']
    with open(os.path.join(REPO, 'tools', 'docker_check.sh')) as f:
        assert '--build-arg "BASE_IMAGE=' in f.read()


def test_pip_step_fails_without_the_index(dockerfile):
    """``pip install --upgrade`` alone exits 0 and keeps the venv's pip when
    the index is unreachable; ``--force-reinstall`` makes the installed pip
    no candidate, so the step fails (tools/docker_check.sh runs it offline)."""
    steps = [v for k, v in dockerfile
             if k == 'RUN' and v.startswith('python -m pip install --upgrade')]
    assert len(steps) == 1, steps
    assert '--force-reinstall' in steps[0].split()


def test_base_image_is_cuda12_cudnn8_runtime(dockerfile):
    images = [base_image(dockerfile)]
    m = re.match(r'^nvidia/cuda:(\d+)\.(\d+)(?:\.\d+)?-cudnn(\d*)-runtime-'
                 r'ubuntu\d+\.\d+$', images[0])
    assert m, ('base image %r is not nvidia/cuda:12.x-cudnn*-runtime-ubuntu*'
               % images[0])
    assert m.group(1) == '12', 'the cuda12 extra needs a CUDA 12 image'
    # CuPy 13 (the last with cuDNN) supports cuDNN 8, not 9; images of
    # CUDA >= 12.4 tagged plain "cudnn" carry cuDNN 9.
    assert m.group(3) == '8', 'cupy-cuda12x 13.x needs cuDNN 8 (tag cudnn8)'


def test_python_is_the_faithful_311(dockerfile, setup_info):
    args = docker_args(dockerfile)
    assert args.get('PYTHON_VERSION') == FAITHFUL_PYTHON
    runs = ' '.join(v for k, v in dockerfile if k == 'RUN')
    assert 'python${PYTHON_VERSION} -m venv' in runs
    assert 'python${PYTHON_VERSION}-venv' in runs
    python_requires = setup_info[3]
    assert spec_allows(python_requires.replace(' ', ''), FAITHFUL_PYTHON), \
        'setup.py python_requires %r excludes %s' % (python_requires,
                                                     FAITHFUL_PYTHON)


def test_setup_pins(setup_info):
    constants, install_requires, extras, _ = setup_info
    assert constants['CHAINER'] == 'chainer==7.8.1'
    assert constants['CHAINER'] in install_requires
    assert 'setuptools<81' in [r.replace(' ', '') for r in install_requires]
    name, spec = split_requirement(constants['CUPY_CUDA12'])
    assert name == 'cupy-cuda12x'
    assert spec_allows(spec, '13.0') and spec_allows(spec, '13.6.0')
    assert not spec_allows(spec, '14.0') and not spec_allows(spec, '12.3')
    assert extras['cuda12'] == [constants['CUPY_CUDA12']]
    assert extras['plot'] == ['matplotlib']
    assert extras['report'] == ['scipy']


def test_dockerfile_installs_with_the_recipe(docker_recipe, setup_info):
    constraint, build_constraint, dextras = docker_recipe
    assert constraint == build_constraint, (
        'PIP_CONSTRAINT and PIP_BUILD_CONSTRAINT must name the same file '
        '(pip >= 26.2 reads only the latter for the isolated build)')
    assert constraints_basename(constraint) == 'constraints-faithful.txt'
    assert dextras is not None, "the Dockerfile should pip install -e '.[...]'"
    assert set(dextras) == {'cuda12', 'plot'}
    assert set(dextras) <= set(setup_info[2])


def test_ci_installs_what_the_tests_need(setup_info):
    """.ci/run installs the test extra with the plot and report extras
    (the reports' figures and p-values, which the tests regenerate), each
    one an extra of setup.py."""
    installs = [e.split(',') for e in
                re.findall(r"install\s.*-e\s+'\.\[([^\]]*)\]'", read(CI_RUN))]
    with_tests = [e for e in installs if 'test' in e]
    assert with_tests, ".ci/run installs no '.[test,...]'"
    for extras in installs:
        assert set(extras) <= set(setup_info[2]), extras
    for extras in with_tests:
        assert {'plot', 'report'} <= set(extras), extras


def test_faithful_constraints_match_setup(setup_info):
    constants = setup_info[0]
    lines = requirement_lines(os.path.join(REPO, 'constraints-faithful.txt'))
    assert 'setuptools<81' in lines
    assert 'numpy<2' in lines
    # Everything constraints.txt holds (the setuptools fix), the faithful
    # file holds too.
    assert set(requirement_lines(os.path.join(REPO, 'constraints.txt'))) \
        <= set(lines)
    cupy = [split_requirement(r) for r in lines
            if split_requirement(r)[0] == 'cupy-cuda12x']
    assert len(cupy) == 1, 'constraints-faithful.txt should bound cupy-cuda12x'
    _, spec = split_requirement(constants['CUPY_CUDA12'])
    for version in ('12.3', '13.0', '13.6.0', '14.0'):
        # The constraint and the extra agree on every CuPy the extra admits.
        if spec_allows(spec, version):
            assert spec_allows(cupy[0][1], version), version
    assert not spec_allows(cupy[0][1], '14.0')


def test_default_command_runs_table1_with_volumes(dockerfile):
    env = docker_env(dockerfile)
    assert env.get('CHAINER_VFBN_DATA') == '/data'
    volumes = [json.loads(v) for k, v in dockerfile if k == 'VOLUME']
    assert volumes and set(sum(volumes, [])) == {'/data', '/results'}
    cmds = [json.loads(v) for k, v in dockerfile if k == 'CMD']
    assert len(cmds) == 1
    cmd = cmds[0]
    assert cmd[:2] == ['python', 'train/reproduce.py']
    assert os.path.isfile(os.path.join(REPO, cmd[1]))
    opts = dict(zip(cmd[2::2], cmd[3::2]))
    assert opts['--out'] == '/results'
    assert opts['--schedule'] in ('short', 'paper')
    assert opts['--device'] == '0'


def dockerignore_patterns():
    """The patterns of .dockerignore, in order, without comments."""
    return [line.strip() for line in
            read(os.path.join(REPO, '.dockerignore')).splitlines()
            if line.strip() and not line.startswith('#')]


def dockerignored(path, patterns):
    """Whether ``path`` (relative to the context) is left out of the build
    context: the last pattern that matches it or a folder above it wins,
    ``!`` keeps, ``**`` spans folders, ``*`` and ``?`` do not."""
    parts = path.split('/')
    excluded = False
    for pattern in patterns:
        keep = pattern.startswith('!')
        body = pattern.lstrip('!').strip('/')
        regex = ''.join(
            '.*' if tok == '**' else '[^/]*' if tok == '*' else
            '[^/]' if tok == '?' else re.escape(tok)
            for tok in re.findall(r'\*\*|\*|\?|[^*?]+', body))
        if any(re.fullmatch(regex, '/'.join(parts[:i]))
               for i in range(1, len(parts) + 1)):
            excluded = not keep
    return excluded


def test_dockerignore_matcher_on_known_patterns():
    patterns = ['.git', '**/__pycache__', '*.npz', '!data/**', 'result*']
    assert dockerignored('.git/HEAD', patterns)
    assert dockerignored('chainer_vfbn/__pycache__/x.pyc', patterns)
    assert dockerignored('a.npz', patterns)
    assert not dockerignored('data/a.npz', patterns)
    assert dockerignored('results/table.md', patterns)
    assert not dockerignored('docs/results/table.md', patterns)
    assert not dockerignored('chainer_vfbn/datasets/cifar10.py', patterns)


def test_dockerignore_keeps_what_the_image_needs():
    patterns = dockerignore_patterns()
    for needed in ('setup.py', 'constraints-faithful.txt', 'constraints.txt',
                   'README.md', 'chainer_vfbn/__init__.py',
                   'train/reproduce.py', 'data/download_cifar10.py',
                   'chainer_vfbn/datasets/sample/cifar-10-python.tar.gz'):
        assert not dockerignored(needed, patterns), needed
        assert os.path.exists(os.path.join(REPO, needed)), needed
    assert dockerignored('.venv/bin/python', patterns)
    assert dockerignored('.git/HEAD', patterns)


def test_readme_install_recipe_matches():
    """README.md: a fenced block runs the recipe, with a constraints file
    that exists and holds setuptools<81, exported under both names."""
    blocks = fenced_blocks(read(README))
    recipes = [r for block in blocks for r in pip_recipes(block)]
    assert recipes, ('README.md has no fenced code block with the install '
                     'recipe PIP_CONSTRAINT=<file> PIP_BUILD_CONSTRAINT=<file> '
                     "pip install -e '.[...]'")
    for constraint, build_constraint, extras in recipes:
        assert constraint == build_constraint
        name = constraints_basename(constraint)
        path = os.path.join(REPO, name)
        assert os.path.isfile(path), name
        assert 'setuptools<81' in requirement_lines(path)
        assert extras is not None
    # The faithful stack the image builds is the one README documents.
    rows = [line for line in read(README).splitlines()
            if line.startswith('| faithful')]
    assert len(rows) == 1, 'README.md: one "| faithful |" row in Supported stacks'
    for word in (FAITHFUL_PYTHON, '1.26', 'cupy-cuda12x 13',
                 'constraints-faithful.txt'):
        assert word in rows[0], word


def test_readme_shows_docker_lines(dockerfile):
    """README.md shows ``docker build`` and ``docker run --gpus all`` with a
    volume for the data (/data) and one for the results (/results)."""
    blocks = '\n'.join(fenced_blocks(read(README)))
    assert re.search(r'^\s*docker build\b.*\s\.\s*$', blocks, re.M), \
        'README.md: no fenced `docker build ... .` line'
    runs = re.findall(r'^\s*docker run\b.*$', blocks, re.M)
    assert runs, 'README.md: no fenced `docker run` line'
    run = runs[0]
    assert '--gpus all' in run
    assert re.search(r'-v\s+\S+:/data\b', run), 'no -v ...:/data volume'
    assert re.search(r'-v\s+\S+:/results\b', run), 'no -v ...:/results volume'

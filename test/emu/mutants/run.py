#!/usr/bin/env python3
"""One-time mutation testing of kvtrim's kernels against the emulator (native/cuda/emu/README.md,
"Mutation table"). Each mutant removes one __syncthreads or __threadfence, or turns one atomic
into a plain read-modify-write, in a copy of native/cuda (the repository is never touched), then:
plain: harness.cc under deterministic / random / priority, seeds 1 and 2: caught when any digest
differs from the original's or a launch fails; TSan: harness.cc built with KVTRIM_EMU_TSAN=1 and
-fsanitize=thread, deterministic schedule (TSan's verdict does not depend on it): caught on any
ThreadSanitizer report.
Usage: python3 test/emu/mutants/run.py [workdir]   (prints the Markdown table)"""
import os, re, shutil, subprocess, sys, glob

root = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
work = sys.argv[1] if len(sys.argv) > 1 else '/tmp/kvtrim-mutants'
os.makedirs(work, exist_ok=True)
cuda_inc = '/usr/local/cuda/include'
flags = ['-std=c++17', '-O1', '-g', '-ffp-contract=off', '-w', '-pthread'] + (['-I' + cuda_inc] if os.path.exists(cuda_inc + '/vector_types.h') else [])
emu = sorted(glob.glob(os.path.join(root, 'native/cuda/emu/*.cc')))  # the emulator's sources

def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)

def objects(tag):
    return [os.path.join(work, f'emu-{tag}', os.path.basename(src)[:-3] + '.o') for src in emu]

def build_objects():
    for tag, extra in (('plain', []), ('tsan', ['-DKVTRIM_EMU_TSAN=1'])):
        os.makedirs(os.path.join(work, f'emu-{tag}'), exist_ok=True)
        for src, o in zip(emu, objects(tag)):
            if not os.path.exists(o):
                r = sh(['g++', *flags, *extra, '-c', src, '-o', o])
                assert r.returncode == 0, r.stderr

MUTATIONS = [
    (r'^(\s*)__syncthreads\(\);', r'\1/* MUTANT: __syncthreads removed */;', 'remove `__syncthreads()`'),
    (r'^(\s*)__threadfence\(\);', r'\1/* MUTANT: __threadfence removed */;', 'remove `__threadfence()`'),
    (r'atomicAdd\(&sm\.hist\[(.*)\], 1u\)', r'(sm.hist[\1] += 1u)', '`atomicAdd` on the shared histogram -> `+=`'),
    (r'atomicAdd\(&gh\[i\], sm\.hist\[i\]\)', r'(gh[i] += sm.hist[i])', '`atomicAdd` on the global histogram -> `+=`'),
    (r'atomicExch\(&c\[(\d)\], (\w+)\)', r'(c[\1] = \2)', '`atomicExch` of a slice count -> plain store'),
    (r'atomicAdd\(counter, 1u\);', r'*counter += 1u;', 'row barrier arrival `atomicAdd` -> `+=`'),
    (r'atomicAdd\(counter, 0u\)', r'*(volatile unsigned*)counter', 'row barrier spin `atomicAdd(counter, 0)` -> volatile read'),
    (r'atomicMin\(a\.bad, (\(unsigned long long\)\(row \* n \+ j\))\)', r'(*a.bad = *a.bad < \1 ? *a.bad : \1)', '`atomicMin` of the bad index -> plain min'),
    (r'atomicOr\(a\.bad, 1ull\)', r'(*a.bad |= 1ull)', '`atomicOr` of the bad flag -> `|=`'),
]
FILES = {'compress.cuh': 'compress', 'common.cuh': 'compress', 'uncertainty.cuh': 'uncertainty', 'norms.cuh': 'compress'}

def mutants():
    for fname in FILES:
        lines = open(os.path.join(root, 'native/cuda/kernels', fname)).read().split('\n')
        for i, line in enumerate(lines):
            if line.lstrip().startswith('//'):
                continue
            for pat, rep, what in MUTATIONS:
                if re.search(pat, line):
                    yield fname, i, re.sub(pat, rep, line, count=1), what

def build(tag, src_dir, out):
    extra = ['-DKVTRIM_EMU_TSAN=1', '-fsanitize=thread'] if tag == 'tsan' else []
    r = sh(['g++', *flags, *extra, '-I' + src_dir, os.path.join(root, 'test/emu/mutants/harness.cc'),
            *objects(tag), '-o', out])
    return r.returncode == 0, r.stderr

def digests(binary, sch, seed, subset, env=None):
    r = sh([binary, sch, str(seed), subset], env=env, timeout=900)
    return r.stdout.strip(), r.returncode

def copy_tree(dst):
    if os.path.exists(dst):
        shutil.rmtree(dst)
    os.makedirs(dst)
    shutil.copytree(os.path.join(root, 'native/cuda/kernels'), os.path.join(dst, 'kernels'))
    shutil.copy(os.path.join(root, 'native/cuda/cuda_api.h'), dst)
    os.symlink(os.path.join(root, 'native/cuda/emu'), os.path.join(dst, 'emu'))
    # the kernels include ../../core/contract.h: beside the copies, one link to native/core
    core = os.path.join(os.path.dirname(dst), 'core')
    if not os.path.exists(core):
        os.symlink(os.path.join(root, 'native/core'), core)

def main():
    build_objects()
    orig = os.path.join(work, 'orig')
    copy_tree(orig)
    ok, err = build('plain', orig, os.path.join(work, 'h-orig'))
    assert ok, err
    golden = {s: digests(os.path.join(work, 'h-orig'), 'deterministic', 1, s)[0] for s in ('compress', 'uncertainty', 'split')}
    rows = []
    first = int(sys.argv[2]) if len(sys.argv) > 2 else 0  # resume from mutant number `first`
    only = [x for x in os.environ.get('MUTANT_SITES', '').split(',') if x]  # e.g. compress.cuh:190
    for n, (fname, i, new, what) in enumerate(mutants()):
        if n < first or (only and f'{fname}:{i + 1}' not in only):
            continue
        subset = 'uncertainty' if fname == 'uncertainty.cuh' else 'compress'
        d = os.path.join(work, f'm{n}')
        copy_tree(d)
        path = os.path.join(d, 'kernels', fname)
        lines = open(path).read().split('\n')
        lines[i] = new
        open(path, 'w').write('\n'.join(lines))
        plain = tsan = '?'
        ok, err = build('plain', d, os.path.join(d, 'h'))
        if not ok:
            plain = tsan = 'does not compile'
        else:
            how = []
            for sch in ('deterministic', 'random', 'priority'):
                for seed in (1, 2):
                    out, rc = digests(os.path.join(d, 'h'), sch, seed, subset)
                    if rc != 0 or out != golden[subset]:
                        bad = [(l.split() or ['?'])[0] for l, g in zip(out.split('\n'), golden[subset].split('\n')) if l != g]
                        how.append(f"{sch}: {', '.join(bad) if bad else 'crash'}" + (' (error)' if 'error' in out else ''))
                        break
            plain = 'caught (' + '; '.join(how) + ')' if how else 'not caught'
            ok, err = build('tsan', d, os.path.join(d, 'ht'))
            reports = 0
            for sch in os.environ.get('TSAN_SCHEDULES', 'deterministic').split(','):
                for f in glob.glob(os.path.join(d, 'tsan.log*')):
                    os.remove(f)
                env = dict(os.environ, TSAN_OPTIONS=f'halt_on_error=1:exitcode=0:clear_shadow_mmap_threshold=1048576:log_path={d}/tsan.log')
                digests(os.path.join(d, 'ht'), sch, 1, subset, env)
                text = ''.join(open(f).read() for f in glob.glob(os.path.join(d, 'tsan.log*')))
                if 'WARNING: ThreadSanitizer' in text:
                    m = re.search(r'#0 \S+ .*?(\w+\.cuh:\d+)', text)
                    tsan = f"reported ({sch}{', ' + m.group(1) if m else ''})"
                    reports = 1
                    break
            if not reports:
                tsan = 'not reported'
        rows.append((f'{fname}:{i + 1}', what, plain, tsan))
        print(f'| `{fname}:{i + 1}` | {what} | {plain} | {tsan} |', flush=True)
        shutil.rmtree(d, ignore_errors=True)

if __name__ == '__main__':
    main()

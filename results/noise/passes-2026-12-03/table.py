"""Per policy, label setting, budget and seed range of the runs in this folder: final test
accuracy (mean ± std over 3 seeds), Δ against random at the same seed and budget (mean, then
per seed) and Δ against full data. Random and full of seeds 31-33 come from the top-level
folders of results/noise/, of seeds 41-43 from validate-2026-12-03/ (and, for 30 % pairs at
budget 0.3, from this folder); full data does not depend on the budget."""
import glob
import json
import os
import statistics as st

R = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..") + "/"
def load(f):
    out={}
    for p in json.load(open(f)):
        out[p['policy']]={r['seed']:r['final_test_acc'] for r in p['runs']}
    return out
base={}
# seeds 31-33 baselines
for lab in ['clean','sym20','pairs30']:
    for b in ['0.7','0.3']:
        for f in glob.glob(R+f'{lab}-budget{b}-*/compare.json'):
            for pol,d in load(f).items():
                if pol in ('random','full'): base.setdefault((lab,b,pol),{}).update(d)
for f in glob.glob(R+'validate-2026-12-03/*/compare.json'):
    name=f.split('/')[-2]; lab,b=name.split('-')[0],name.split('-')[1].replace('budget','')
    for pol,d in load(f).items():
        if pol in ('random','full'): base.setdefault((lab,b,pol),{}).update(d)
for f in glob.glob(R+'passes-2026-12-03/*random*/compare.json'):
    for pol,d in load(f).items(): base.setdefault(('pairs30','0.3','random'),{}).update(d)
# full for pairs/sym seeds 41 at 0.3 missing; full is budget-independent -> use 0.7 full
for lab in ['clean','sym20','pairs30']:
    for b in ['0.7','0.3']:
        for o in ['0.7','0.3']:
            if (lab,o,'full') in base: base.setdefault((lab,b,'full'),{}).update(base[(lab,o,'full')])
rows=[]
for f in sorted(glob.glob(R+'passes-2026-12-03/*/compare.json')):
    name=f.split('/')[-2]; parts=name.split('-'); lab=parts[0]; b=parts[1].replace('budget','')
    for pol,d in load(f).items():
        if pol=='random': continue
        rnd=base.get((lab,b,'random'),{}); full=base.get((lab,b,'full'),{})
        seeds=sorted(d)
        dr=[d[s]-rnd[s] for s in seeds if s in rnd]
        df=[d[s]-full[s] for s in seeds if s in full]
        m=st.mean(d.values()); sd=st.stdev(d.values())
        print(f"{lab:8} {b} s{seeds[0]}-{seeds[-1]} {pol:15} {m:.2f} ± {sd:.2f}  vs random {st.mean(dr) if len(dr)==3 else float('nan'):+.2f} ({', '.join(f'{x:+.2f}' for x in dr)})  vs full {st.mean(df) if len(df)==3 else float('nan'):+.2f}")

import json,sys,statistics as st
def load(d):
    out={}
    for p in json.load(open(d+'/compare.json')):
        out[p['policy']]={r.get('seed',i):r['epochs'][-1]['test_acc'] for i,r in enumerate(p['runs'])}
    return out
a=load(sys.argv[1]); ref=a['random']
for p,v in a.items():
    ks=sorted(v); dl=[v[k]-ref[k] for k in ks]
    m=sum(dl)/len(dl); se=(st.stdev(dl)/len(dl)**0.5) if len(dl)>1 and p!='random' else 0
    print(f"{p:30s} acc={sum(v.values())/len(v):.2f} d={m:+.2f} se={se:.2f} pos={sum(x>0 for x in dl)}/{len(dl)} ["+", ".join(f"{x:+.2f}" for x in dl)+"]")

import nope from 'k6/x/does-not-exist';
export default function () { nope(); }

import { twice } from './helper';
import { half } from './util';

console.log(JSON.stringify([twice(21), half(3)]));
